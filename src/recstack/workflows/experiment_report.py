"""An experiment's results as one self-contained HTML page with plots (no CDN, images inline).

Plots: the primary metric's relative lift over time with its confidence interval (the analysis
re-run on the data up to each of ``POINTS`` cut-offs), the per-arm CTR with intervals, and
the sample ratio (users per arm against what the weights expect).
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recstack.experiments.analysis import analyse_experiment
from recstack.experiments.config import validated
from recstack.workflows.experiments import (
    arm_samples,
    experiment_results,
    get_experiment,
    user_samples,
)

POINTS = 8


def lift_over_time(store: Any, key: str, points: int = POINTS) -> list[dict[str, Any]]:
    """Per cut-off time and treatment arm: the primary metric's lift and CI so far."""
    experiment = validated(get_experiment(store, key))
    span = store.exposures.time_range(key)
    if span is None or experiment.mode != "ab":
        return []
    out = []
    for cut in np.linspace(span[0], span[1], points + 1)[1:]:
        samples = arm_samples(user_samples(store, experiment, float(cut)), experiment)
        if any(s.users < 2 for s in samples.values()):
            continue
        result = analyse_experiment(
            samples,
            {a.name: a.weight for a in experiment.arms},
            experiment.arm_names[0],
            primary=experiment.primary_metric,
            looks=1,
        )
        for c in result["comparisons"]:
            if c["metric"] == experiment.primary_metric:
                out.append({"time": float(cut), "arm": c["arm"], "lift": c["lift"],
                            "ci": c["sequential"]["lift_ci"]})  # fmt: skip
    return out


def report_html(store: Any, key: str) -> str:
    """The report page for experiment ``key``."""
    results = experiment_results(store, key)
    plots = []
    series = lift_over_time(store, key)
    if series:
        plots.append(("Lift of the primary metric over time (always-valid CI)", _lift_plot(series)))
    arms = results.get("arms", {})
    if arms and all("metrics" in a for a in arms.values()):
        plots.append(("CTR per arm", _ctr_plot(arms)))
    if "srm" in results:
        definition = get_experiment(store, key)
        plots.append(("Sample ratio", _srm_plot(arms, definition, results["srm"])))
    decision = results.get("decision", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Experiment {html.escape(key)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
        "pre{background:#f4f4f4;padding:1rem;overflow:auto}</style></head><body>",
        f"<h1>Experiment {html.escape(key)}</h1>",
        f"<p>Status: {html.escape(str(results.get('status')))} · mode: "
        f"{html.escape(str(results.get('mode')))}</p>",
        f"<h2>Decision</h2><p><b>{html.escape(str(decision.get('action', '')))}</b> — "
        f"{html.escape(str(decision.get('reason', '')))}</p>",
    ]
    for title, png in plots:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Results</h2><pre>")
    parts.append(html.escape(json.dumps(results, indent=2, default=str)))
    parts.append("</pre></body></html>")
    return "".join(parts)


def _pyplot():  # noqa: ANN202 - returns the pyplot module
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any, plt: Any) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _lift_plot(series: list[dict[str, Any]]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for arm in dict.fromkeys(p["arm"] for p in series):
        points = [p for p in series if p["arm"] == arm]
        times = [datetime.fromtimestamp(p["time"], UTC) for p in points]
        lift = _percent([p["lift"] for p in points])
        low = _percent([p["ci"][0] for p in points])
        high = _percent([p["ci"][1] for p in points])
        ax.plot(times, lift, marker="o", label=arm)
        ax.fill_between(times, low, high, alpha=0.2)
    ax.axhline(0, color="grey", lw=1)
    ax.set_ylabel("relative lift (%)")
    ax.legend()
    fig.autofmt_xdate()
    return _png(fig, plt)


def _percent(values: list[Any]) -> np.ndarray:
    """Fractions as percentages; a missing value (null in the results) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values]) * 100


def _ctr_plot(arms: dict[str, Any]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(arms)
    values = _percent([arms[a]["metrics"]["ctr"]["value"] for a in names]) / 100
    low = _percent([arms[a]["metrics"]["ctr"]["ci"][0] for a in names]) / 100
    high = _percent([arms[a]["metrics"]["ctr"]["ci"][1] for a in names]) / 100
    errors = np.nan_to_num(np.array([values - low, high - values]))
    ax.bar(names, values, yerr=errors, capsize=6, color="#4c78a8")
    ax.set_ylabel("CTR (clicks / lists shown)")
    return _png(fig, plt)


def _srm_plot(arms: dict[str, Any], definition: dict[str, Any], srm: dict[str, Any]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(arms)
    users = np.array([arms[a]["users"] for a in names], dtype=float)
    weights = {a["name"]: a["weight"] for a in definition["arms"]}
    expected = users.sum() * np.array([weights[a] for a in names])
    x = np.arange(len(names))
    ax.bar(x - 0.2, users, 0.4, label="observed users")
    ax.bar(x + 0.2, expected, 0.4, label="expected by weight")
    ax.set_xticks(x, names)
    flag = "FLAGGED" if srm.get("flag") else "ok"
    ax.set_title(f"SRM p = {srm.get('p_value', float('nan')):.3g} ({flag})")
    ax.legend()
    return _png(fig, plt)
