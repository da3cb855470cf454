"""The decision summary of an experiment: ship, do not ship or keep running, and why.

Rules, in order: a sample-ratio mismatch voids the experiment (do not ship, fix assignment); an
arm that significantly harms a guardrail is out; an arm whose primary metric is significantly up
is shipped (the largest lift if several); a primary metric significantly down for every arm is a
"do not ship"; otherwise keep running until the arms reach the users needed for the minimum
detectable effect, after which the absence of a significant lift is a "do not ship".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _fmt(c: Mapping[str, Any], sequential: bool) -> str:
    p = c["sequential"]["p_adjusted"] if sequential else c["p_adjusted"]
    return f"{c['metric']} {c['lift']:+.1%} (p={p:.3g})"


def decide(
    comparisons: Sequence[Mapping[str, Any]],
    *,
    srm_flag: bool,
    srm_p_value: float,
    primary: str,
    guardrails: Sequence[str] = (),
    users_per_arm: int,
    users_needed: int | None,
    sequential: bool = False,
) -> dict[str, str]:
    """Turn comparisons (with ``arm``, ``metric``, ``lift``, ``significant``) into an action.

    >>> up = {"arm": "b", "metric": "ctr", "lift": 0.2, "significant": True, "p_adjusted": 0.01}
    >>> decide([up], srm_flag=False, srm_p_value=0.5, primary="ctr",
    ...        users_per_arm=1000, users_needed=500)["action"]
    'ship'
    >>> decide([up], srm_flag=True, srm_p_value=1e-9, primary="ctr",
    ...        users_per_arm=1000, users_needed=500)["action"]
    'do not ship'
    >>> flat = dict(up, lift=0.01, significant=False, p_adjusted=0.6)
    >>> decide([flat], srm_flag=False, srm_p_value=0.5, primary="ctr",
    ...        users_per_arm=100, users_needed=500)["action"]
    'keep running'
    >>> decide([flat], srm_flag=False, srm_p_value=0.5, primary="ctr",
    ...        users_per_arm=1000, users_needed=500)["action"]
    'do not ship'
    >>> decide([dict(up, lift=-0.2)], srm_flag=False, srm_p_value=0.5, primary="ctr",
    ...        users_per_arm=1000, users_needed=500)["reason"]
    "primary metric significantly worse: 'b' ctr -20.0% (p=0.01)"
    """
    if srm_flag:
        return {
            "action": "do not ship",
            "reason": f"sample ratio mismatch (p={srm_p_value:.2g} < 0.001): assignment or "
            "exposure logging is broken, so no lift can be trusted; fix it and restart",
        }
    test = "always-valid sequential" if sequential else "fixed-horizon"
    arms = list(dict.fromkeys(c["arm"] for c in comparisons))
    harmed = {
        c["arm"]: c
        for c in comparisons
        if c["metric"] in guardrails
        and c["metric"] != primary
        and c["significant"]
        and c["lift"] < 0
    }
    primary_rows = {c["arm"]: c for c in comparisons if c["metric"] == primary}
    up = [c for a, c in primary_rows.items() if c["significant"] and c["lift"] > 0]
    down = {a for a, c in primary_rows.items() if c["significant"] and c["lift"] < 0}
    winners = [c for c in up if c["arm"] not in harmed]
    if winners:
        best = max(winners, key=lambda c: c["lift"])
        return {
            "action": "ship",
            "arm": best["arm"],
            "reason": f"arm {best['arm']!r}: {_fmt(best, sequential)} is significant ({test} "
            "test, Holm-adjusted) with no guardrail harmed",
        }
    if arms and all(a in harmed or a in down for a in arms):
        parts = [f"{a!r} guardrail {_fmt(harmed[a], sequential)}" for a in arms if a in harmed]
        parts += [
            f"{a!r} {_fmt(primary_rows[a], sequential)}"
            for a in arms
            if a in down and a not in harmed
        ]
        what = "guardrail harmed" if harmed else "primary metric significantly worse"
        return {"action": "do not ship", "reason": f"{what}: " + "; ".join(parts)}
    if users_needed is not None and users_per_arm < users_needed:
        return {
            "action": "keep running",
            "reason": f"no significant {primary} difference yet ({test} test); {users_per_arm} "
            f"users per arm of the {users_needed} needed for 80% power",
        }
    return {
        "action": "do not ship",
        "reason": f"no significant {primary} lift with enough users for 80% power "
        f"({users_per_arm} per arm, {test} test)",
    }
