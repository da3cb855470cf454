"""What an evaluation produces: one result per model, and the results table they print as.

The table lives beside the results (not in ``report``) so a result can render itself without
the report module, which builds on these classes, being imported back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

# (metric key, column title pattern; {k} is the cut-off)
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ndcg", "NDCG@{k}"),
    ("precision", "P@{k}"),
    ("recall", "R@{k}"),
    ("map", "MAP@{k}"),
    ("map_all_relevant", "MAP@{k} (all rel.)"),
    ("mrr", "MRR@{k}"),
    ("hit_rate", "HR@{k}"),
    ("coverage", "coverage"),
    ("diversity", "diversity"),
    ("novelty", "novelty"),
)
# shown only when some model predicts ratings (``models.protocols.RatingPredictor``)
RATING_COLUMNS: tuple[tuple[str, str], ...] = (("rmse", "RMSE"), ("mae", "MAE"))


@dataclass
class ModelResult:
    """How one model did: metrics at k, metrics per cut-off, and timings.

    ``recommended`` (the top lists, item indices) stays in memory for plots and is not
    serialised.
    """

    name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    curve: dict[int, dict[str, float]]
    train_seconds: float
    predict_seconds: float
    recommended: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "metrics": self.metrics,
            "curve": {str(k): v for k, v in self.curve.items()},
            "train_seconds": self.train_seconds,
            "predict_seconds": self.predict_seconds,
        }


@dataclass
class EvaluationResult:
    """The outcome of ``evaluate_models``: the protocol, the data and one result per model."""

    protocol: str
    ratio: float
    seed: int
    k: int
    ks: list[int]
    min_rating: float | None
    dataset: dict[str, Any]
    train_interactions: int
    test_interactions: int
    users_evaluated: int
    users_skipped: int
    diversity_source: str
    models: list[ModelResult]
    split_keys: str = "hash"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    item_popularity: np.ndarray | None = field(default=None, repr=False, compare=False)

    def model(self, name: str) -> ModelResult:
        """The result of model ``name``."""
        for result in self.models:
            if result.name == name:
                return result
        raise KeyError(name)

    def best(self, metric: str = "ndcg") -> ModelResult:
        """The model with the highest ``metric`` at k."""
        if not self.models:
            raise ValueError("no models were evaluated")
        return max(self.models, key=lambda r: r.metrics.get(metric, float("-inf")))

    def to_markdown(self) -> str:
        """The results table in Markdown."""
        return markdown_table(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (arrays left out)."""
        out = {
            key: value
            for key, value in asdict(self).items()
            if key not in ("models", "item_popularity")
        }
        out["models"] = [r.to_dict() for r in self.models]
        return out


def table_rows(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the results table (one row per model)."""
    columns = TABLE_COLUMNS
    if any("rmse" in model.metrics for model in result.models):
        columns = columns + RATING_COLUMNS
    header = ["model"] + [title.format(k=result.k) for _, title in columns] + ["train s"]
    rows = []
    for model in result.models:
        cells = [model.name]
        cells += [f"{model.metrics.get(key, float('nan')):.4f}" for key, _ in columns]
        cells.append(f"{model.train_seconds:.2f}")
        rows.append(cells)
    return header, rows


def markdown_table(result: EvaluationResult) -> str:
    """The results as a Markdown table."""
    header, rows = table_rows(result)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
