"""Evaluation charts as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recstack.evaluation.results import EvaluationResult

ACCURACY_METRICS: tuple[str, ...] = ("ndcg", "precision", "recall", "map", "mrr", "hit_rate")
CURVE_METRICS: tuple[str, ...] = ("ndcg", "precision", "recall")


def _pyplot():  # noqa: ANN202 - returns the pyplot module
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_metrics_by_model(result: EvaluationResult, path: Path) -> Path:
    """Grouped bars: each accuracy metric at k, one bar per model."""
    plt = _pyplot()
    names = [r.name for r in result.models]
    x = np.arange(len(ACCURACY_METRICS))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * len(ACCURACY_METRICS) * len(names) / 3), 4.5))
    for i, model in enumerate(result.models):
        values = [model.metrics.get(metric, 0.0) for metric in ACCURACY_METRICS]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=model.name)
    ax.set_xticks(x, [f"{metric}@{result.k}" for metric in ACCURACY_METRICS])
    ax.set_ylabel("score")
    ax.set_title(f"Accuracy by model ({result.protocol} split, {result.users_evaluated} users)")
    ax.legend(fontsize="small", ncols=min(len(names), 4))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, plt, path)


def plot_metrics_vs_k(result: EvaluationResult, path: Path) -> Path:
    """Lines: NDCG, precision and recall against the cut-off k, one line per model."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4.2 * len(CURVE_METRICS), 3.8))
    for ax, metric in zip(np.atleast_1d(axes), CURVE_METRICS, strict=True):
        for model in result.models:
            cutoffs = sorted(model.curve)
            ax.plot(
                cutoffs, [model.curve[c][metric] for c in cutoffs], marker="o", label=model.name
            )
        ax.set_xlabel("k")
        ax.set_title(f"{metric}@k")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize="small")
    fig.suptitle("Metrics against the cut-off")
    return _save(fig, plt, path)


def plot_popularity_bias(result: EvaluationResult, path: Path) -> Path:
    """Popularity of recommended items against the catalogue's, and ARP per model.

    Left: the share of recommendations (or of catalogue items) at or below each training
    popularity (log scale); a curve far right of the catalogue means popular items dominate.
    Right: average recommended popularity (ARP) per model.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    pop = result.item_popularity
    if pop is not None and len(pop):
        _cdf(left, np.asarray(pop, dtype=float), "catalogue", style="k--")
        for model in result.models:
            if model.recommended is not None:
                rec = model.recommended[model.recommended >= 0]
                _cdf(left, np.asarray(pop, dtype=float)[rec], model.name)
        left.set_xscale("symlog")
        left.set_xlabel("item popularity (training users)")
        left.set_ylabel("cumulative share")
        left.legend(fontsize="small")
        left.grid(alpha=0.3)
    left.set_title("Popularity of recommended items")
    names = [r.name for r in result.models]
    right.bar(names, [r.metrics.get("arp", 0.0) for r in result.models], color="tab:orange")
    right.set_title(f"Average recommended popularity @{result.k}")
    right.tick_params(axis="x", rotation=30)
    right.grid(axis="y", alpha=0.3)
    return _save(fig, plt, path)


def _cdf(ax, values: np.ndarray, label: str, style: str = "-") -> None:  # noqa: ANN001
    if values.size == 0:
        return
    ordered = np.sort(values)
    ax.plot(ordered, np.arange(1, ordered.size + 1) / ordered.size, style, label=label)


def _save(fig, plt, path: Path) -> Path:  # noqa: ANN001
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(result: EvaluationResult, out_dir: Path) -> dict[str, Path]:
    """All charts under ``out_dir``: ``{name: png path}``."""
    out = Path(out_dir)
    return {
        "metrics_by_model": plot_metrics_by_model(result, out / "metrics_by_model.png"),
        "metrics_vs_k": plot_metrics_vs_k(result, out / "metrics_vs_k.png"),
        "popularity_bias": plot_popularity_bias(result, out / "popularity_bias.png"),
    }
