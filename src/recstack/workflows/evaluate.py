"""Offline comparison of models on the store's data (``recstack evaluate``).

The request is checked before any data is read, so a typo in a model name fails in
milliseconds rather than after a snapshot of millions of events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recstack.data.dataset import Dataset
from recstack.evaluation.protocol import DEFAULT_KS, check_request, evaluate_models
from recstack.evaluation.results import EvaluationResult
from recstack.settings import Settings
from recstack.workflows.dataset import load_dataset


def evaluate_from_store(
    settings: Settings,
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
    *,
    protocol: str = "stratified",
    ratio: float = 0.75,
    seed: int = 42,
    k: int = 10,
    ks: Sequence[int] = DEFAULT_KS,
    min_rating: float | None = None,
    progress: bool = False,
    dataset: Dataset | None = None,
) -> EvaluationResult:
    """Compare ``models`` offline on the store's data (see ``evaluate_models``)."""
    check_request(models, protocol, ratio, k, ks)
    data = dataset if dataset is not None else load_dataset(settings, progress=progress)
    return evaluate_models(
        data,
        models,
        protocol=protocol,
        ratio=ratio,
        seed=seed,
        k=k,
        ks=ks,
        progress=progress,
        min_rating=min_rating,
    )
