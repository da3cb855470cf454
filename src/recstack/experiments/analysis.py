"""The results of an experiment: per-arm metrics, SRM, lifts with CIs, sequential status, decision.

The input is user-level: one row per user assigned to an arm, with that user's summed exposures,
clicks, conversions and value (and optionally pre-experiment activity for CUPED). Metrics:

* ``ctr`` - clicks / exposures as a ratio metric (delta method, via per-user linearisation);
* ``conversion`` - mean conversions per user;
* ``value`` - mean value per user.

Comparisons (each treatment arm against the control, for the primary metric and the guardrails)
carry a Welch p-value, a Holm-adjusted p-value across that family, a relative lift with a
delta-method CI, and an always-valid mSPRT result. With ``looks=None`` the experiment is read once
at its planned end and the decision uses the fixed-horizon test; with ``looks`` set (the results
are being watched while traffic arrives) the decision uses the always-valid test, which keeps the
false-positive rate at alpha however many times the page is reloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from recstack.experiments.decision import decide
from recstack.experiments.power import sample_size_for_lift
from recstack.experiments.sequential import DEFAULT_TAU, sequential_test
from recstack.experiments.stats import (
    cuped_adjust,
    cuped_theta,
    holm,
    linearise_ratio,
    relative_lift,
    srm_test,
    welch_from_moments,
)

METRICS = ("ctr", "conversion", "value")


@dataclass(frozen=True)
class ArmSample:
    """One row per user assigned to the arm (user-level analysis).

    Attributes:
        exposures: lists shown to each user.
        clicks: clicks on shown items.
        conversions: conversion events (0/1 or counts).
        value: value sums (revenue, rating, minutes).
        pre: pre-experiment activity of the same users, for CUPED (None to skip it).
    """

    exposures: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    value: np.ndarray
    pre: np.ndarray | None = None

    def __post_init__(self) -> None:
        names = ("exposures", "clicks", "conversions", "value", "pre")
        n = None
        for name in names:
            raw = getattr(self, name)
            if raw is None:
                continue
            arr = np.asarray(raw, dtype=float)
            if arr.ndim != 1:
                raise ValueError(f"{name} must be one value per user (1-d), got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} has NaN or infinite values")
            if name != "pre" and np.any(arr < 0):
                raise ValueError(f"{name} has negative values")
            if n is not None and arr.size != n:
                raise ValueError(f"{name} has {arr.size} users, expected {n} like exposures")
            n = arr.size
            object.__setattr__(self, name, arr)

    @property
    def users(self) -> int:
        return int(self.exposures.size)

    def metric(self, metric: str) -> np.ndarray:
        """Per-user values whose mean is the metric (CTR linearised by the delta method)."""
        if metric == "ctr":
            return linearise_ratio(self.clicks, self.exposures)
        if metric == "conversion":
            return self.conversions
        if metric == "value":
            return self.value
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")


def _interval(mean: float, var: float, n: int, alpha: float) -> list[float]:
    if n < 2 or not np.isfinite(var):
        return [float("nan"), float("nan")]
    half = float(special.stdtrit(n - 1, 1 - alpha / 2)) * float(np.sqrt(var))
    return [mean - half, mean + half]


def _moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the mean."""
    return float(values.mean()), float(values.var(ddof=1) / values.size)


def _json(value: Any) -> Any:
    """NaN and infinities become None so the result is strict JSON."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _validate(
    samples: Mapping[str, ArmSample],
    weights: Mapping[str, float],
    control: str,
    metrics: Sequence[str],
) -> None:
    if len(samples) < 2:
        raise ValueError("an experiment needs at least two arms")
    if control not in samples:
        raise ValueError(f"control arm {control!r} is not among the arms {sorted(samples)}")
    if set(weights) != set(samples):
        raise ValueError(f"weights name arms {sorted(weights)}, samples name {sorted(samples)}")
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    for name, sample in samples.items():
        if sample.users < 2:
            raise ValueError(f"arm {name!r} has {sample.users} users; at least 2 are needed")


def analyse_experiment(
    samples: Mapping[str, ArmSample],
    weights: Mapping[str, float],
    control: str,
    *,
    alpha: float = 0.05,
    primary: str = "ctr",
    guardrails: Sequence[str] = (),
    looks: int | None = None,
    mde: float = 0.05,
    tau: float = DEFAULT_TAU,
) -> dict:
    """Analyse an experiment into a JSON-able dict (see the module docstring for the layout).

    ``mde`` is the relative lift worth detecting: it sets the users needed for 80% power and
    whether a non-significant result means "keep running" or "do not ship". ``tau`` is the
    mSPRT mixing scale on the relative-lift scale.
    """
    family = list(dict.fromkeys([primary, *guardrails]))
    _validate(samples, weights, control, family)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    srm = srm_test({a: s.users for a, s in samples.items()}, weights)

    arms: dict[str, Any] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {a: {} for a in samples}
    for name, sample in samples.items():
        metrics = {}
        for metric in METRICS:
            values = (
                sample.metric(metric) if sample.exposures.sum() > 0 or metric != "ctr" else None
            )
            if values is None:
                metrics[metric] = {"value": float("nan"), "ci": [float("nan")] * 2}
                continue
            per_user[name][metric] = values
            mean, var = _moments(values)
            metrics[metric] = {"value": mean, "ci": _interval(mean, var, sample.users, alpha)}
        arms[name] = {
            "users": sample.users,
            "exposures": int(sample.exposures.sum()),
            "metrics": metrics,
        }

    pre_all = [s.pre for s in samples.values()]
    use_cuped = all(p is not None for p in pre_all) and float(np.var(np.concatenate(pre_all))) > 0
    adjusted = per_user
    if use_cuped:
        adjusted = {a: {} for a in samples}
        x_all = np.concatenate(pre_all)
        x_mean = float(x_all.mean())
        for metric in family:
            if any(metric not in per_user[a] for a in samples):
                continue
            y_all = np.concatenate([per_user[a][metric] for a in samples])
            theta = cuped_theta(y_all, x_all)
            for a, s in samples.items():
                adjusted[a][metric] = cuped_adjust(per_user[a][metric], s.pre, theta, x_mean)

    comparisons: list[dict[str, Any]] = []
    for arm, sample in samples.items():
        if arm == control:
            continue
        for metric in family:
            if metric not in adjusted[arm] or metric not in adjusted[control]:
                continue
            mt, vt = _moments(adjusted[arm][metric])
            mc, vc = _moments(adjusted[control][metric])
            test = welch_from_moments(mt, vt, sample.users, mc, vc, samples[control].users)
            lift = relative_lift(mt, vt, mc, vc, alpha)
            seq = sequential_test(lift.lift, lift.se**2, alpha, tau)
            comparisons.append(
                {
                    "arm": arm,
                    "metric": metric,
                    "diff": test.diff,
                    "lift": lift.lift,
                    "lift_ci": list(lift.ci),
                    "p_value": test.p_value,
                    "sequential": {
                        "method": "msprt",
                        "tau": tau,
                        "looks": looks,
                        "p_value": seq.p_value,
                        "lift_ci": list(seq.ci),
                    },
                    "cuped": use_cuped,
                }
            )
    fixed_adjusted = holm([c["p_value"] for c in comparisons])
    sequential_adjusted = holm([c["sequential"]["p_value"] for c in comparisons])
    for c, p_fixed, p_seq in zip(comparisons, fixed_adjusted, sequential_adjusted, strict=True):
        c["p_adjusted"] = p_fixed
        c["sequential"]["p_adjusted"] = p_seq
    for c in comparisons:
        chosen = c["sequential"]["p_adjusted"] if looks is not None else c["p_adjusted"]
        c["significant"] = bool(np.isfinite(chosen) and chosen < alpha)

    control_values = per_user[control].get(primary)
    users_needed = None
    if control_values is not None and abs(control_values.mean()) > 0 and 0 < mde:
        sd = float(control_values.std(ddof=1))
        if sd > 0:
            users_needed = sample_size_for_lift(float(control_values.mean()), sd, mde, alpha)
    power_info = {"mde": mde, "power": 0.8, "users_per_arm": users_needed}
    decision = decide(
        comparisons,
        srm_flag=srm.flag,
        srm_p_value=srm.p_value,
        primary=primary,
        guardrails=family[1:],
        users_per_arm=min(s.users for s in samples.values()),
        users_needed=users_needed,
        sequential=looks is not None,
    )
    return _json(
        {
            "arms": arms,
            "control": control,
            "primary": primary,
            "guardrails": family[1:],
            "alpha": alpha,
            "srm": {"chi2": srm.chi2, "p_value": srm.p_value, "flag": srm.flag},
            "comparisons": comparisons,
            "power": power_info,
            "decision": decision,
        }
    )
