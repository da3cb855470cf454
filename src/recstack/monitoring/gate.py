"""The promotion gate: does a challenger replace the champion? A pure decision on two metric sets.

A refit that is merely different must not replace a model that works (Gorse publishes every
refit unchecked). The challenger must beat the champion on the primary metric by ``margin``
(and be strictly better), and must not lose more than a tolerance on any guardrail: catalogue
coverage and P@1 (relative loss), scoring latency (relative growth).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from recstack.monitoring.config import GateConfig


@dataclass(frozen=True)
class Check:
    """One comparison the gate made."""

    metric: str
    champion: float
    challenger: float
    limit: float
    passed: bool
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """The verdict, the reason in words, and every check behind it."""

    promoted: bool
    reason: str
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "checks": [c.to_dict() for c in self.checks],
        }


GUARDRAILS = (  # (metric key, config attribute, higher is better)
    ("coverage", "coverage_tolerance", True),
    ("precision_at_1", "precision_at_1_tolerance", True),
    ("latency_ms", "latency_tolerance", False),
)


def decide(
    champion: Mapping[str, float], challenger: Mapping[str, float], config: GateConfig
) -> GateDecision:
    """Promote or refuse ``challenger`` against ``champion`` (metric dicts on one holdout).

    Both dicts need ``config.primary_metric`` and the guardrails ``coverage``,
    ``precision_at_1`` and ``latency_ms``.

    >>> cfg = GateConfig(margin=0.01)
    >>> base = {"ndcg": 0.20, "coverage": 0.50, "precision_at_1": 0.30, "latency_ms": 2.0}
    >>> decide(base, {**base, "ndcg": 0.25}, cfg).promoted
    True
    >>> decide(base, {**base, "ndcg": 0.205}, cfg).reason  # gain 0.005 < margin 0.01
    'refused: ndcg 0.2050 does not beat the champion 0.2000 by the margin 0.01'
    >>> decide(base, {**base, "ndcg": 0.25, "coverage": 0.35}, cfg).reason  # lost 30% > 20%
    'refused: guardrail coverage regressed 0.5000 -> 0.3500 (tolerance 20%)'
    """
    primary = config.primary_metric
    champ_p, chall_p = float(champion[primary]), float(challenger[primary])
    needed = champ_p + config.margin
    primary_ok = chall_p > champ_p and chall_p >= needed - 1e-12
    checks = [
        Check(primary, champ_p, chall_p, needed, primary_ok, f">= champion + {config.margin:g}")
    ]
    failed: list[str] = []
    if not primary_ok:
        failed.append(
            f"{primary} {chall_p:.4f} does not beat the champion {champ_p:.4f} "
            f"by the margin {config.margin:g}"
        )
    for metric, attribute, higher_better in GUARDRAILS:
        tolerance = float(getattr(config, attribute))
        old, new = float(champion[metric]), float(challenger[metric])
        if higher_better:
            limit = old * (1.0 - tolerance)
            ok = new >= limit - 1e-12
            rule = f">= champion x (1 - {tolerance:g})"
        else:
            limit = old * (1.0 + tolerance)
            ok = new <= limit + 1e-12
            rule = f"<= champion x (1 + {tolerance:g})"
        checks.append(Check(metric, old, new, limit, ok, rule))
        if not ok:
            failed.append(
                f"guardrail {metric} regressed {old:.4f} -> {new:.4f} (tolerance {tolerance:.0%})"
            )
    if failed:
        return GateDecision(False, "refused: " + "; ".join(failed), checks)
    return GateDecision(
        True,
        f"promoted: {primary} {chall_p:.4f} beats the champion {champ_p:.4f} "
        f"by {chall_p - champ_p:.4f} (margin {config.margin:g}); every guardrail holds",
        checks,
    )
