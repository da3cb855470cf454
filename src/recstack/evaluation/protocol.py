"""Offline evaluation protocol: one split, every model trained on it, ranked lists scored.

The default mirrors Microsoft Recommenders' benchmark: a per-user stratified 75/25 split with
seed 42, top-10 lists with each user's training items removed, and every test interaction
relevant. Users without a relevant test item cannot be scored; they are skipped and counted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.evaluation import metrics as m
from recstack.evaluation.results import EvaluationResult, ModelResult
from recstack.models.base import SCORE_BATCH, Recommender
from recstack.models.catalog import create_model
from recstack.models.protocols import RatingPredictor
from recstack.progress import ProgressTask, track

Protocol = Literal["stratified", "temporal", "leave_last"]
PROTOCOLS: tuple[str, ...] = ("stratified", "temporal", "leave_last")
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
DIVERSITY_SOURCES: tuple[str, ...] = ("auto", "genres", "cooccurrence")
DIVERSITY_SAMPLE = 5_000  # lists scored for diversity (pairwise similarity is the slow metric)


@dataclass(frozen=True)
class HoldoutTarget:
    """Who is scored on a holdout and what counts as relevant for them.

    Attributes:
        users: training indices of the scored users (each has a relevant test item).
        relevant: ``(len(users), n_items)`` boolean CSR of their relevant test items.
        skipped: users with interactions but no relevant test item.
    """

    users: np.ndarray
    relevant: sp.csr_matrix
    skipped: int


def holdout_target(train: Dataset, test: Dataset, min_rating: float | None = None) -> HoldoutTarget:
    """Pick the users to score on ``test`` and their relevant items.

    Every test interaction is relevant unless ``min_rating`` is given, in which case only those
    whose weight (the rating, when ratings weigh by value) is at least ``min_rating`` are, and
    except items the user already has in ``train``: every list excludes a user's training
    items, so no model could ever rank them. With one event per user and item (ratings) none
    are dropped; with a funnel of events per pair (view, start, complete) an event split
    leaves most test events on items seen in training.
    """
    keep = np.ones(test.n_interactions, dtype=bool)
    if min_rating is not None:
        keep = test.weight >= min_rating
    seen = train.matrix
    if seen.shape == (test.n_users, test.n_items) and seen.nnz:
        held = seen[test.user_idx, test.item_idx]
        keep &= np.asarray(held).ravel() == 0
    rel = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (test.user_idx[keep], test.item_idx[keep])),
        shape=(test.n_users, test.n_items),
        dtype=bool,
    )
    rel.sum_duplicates()
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    active = np.unique(np.concatenate([train.user_idx, test.user_idx])).size
    return HoldoutTarget(users=users, relevant=rel[users], skipped=int(active - users.size))


def check_protocol(protocol: str) -> None:
    """Raise a ConfigError naming the known protocols if ``protocol`` is not one of them."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def split_dataset(
    dataset: Dataset,
    protocol: str,
    ratio: float,
    seed: int,
    leave_out: int = 1,
    split_keys: str = "hash",
) -> tuple[Dataset, Dataset]:
    """Split by the named protocol; train and test share the input's id maps.

    ``split_keys`` chooses the stratified split's random keys (see ``data.splits``): ``hash``
    is independent of row order, ``rows`` reproduces Microsoft Recommenders' protocol.
    """
    from recstack.data import splits

    check_protocol(protocol)
    if protocol == "stratified":
        return splits.stratified_split(dataset, ratio=ratio, seed=seed, keys=split_keys)
    if protocol == "temporal":
        return splits.temporal_split(dataset, ratio=ratio)
    return splits.leave_last_n_out(dataset, n=leave_out)


def recommend_users(
    model: Recommender,
    train: Dataset,
    users: np.ndarray,
    k: int,
    progress: bool = False,
    description: str = "recommending",
) -> np.ndarray:
    """Top-k item indices for ``users`` with their training items excluded, in batches."""
    history = train.matrix[users]
    known = np.diff(train.matrix.indptr)[users] > 0
    user_arg = np.where(known, users, -1)
    out = np.full((len(users), k), -1, dtype=np.int64)
    batches = range(0, len(users), SCORE_BATCH)
    for lo in track(batches, description, enabled=progress and len(batches) > 1):
        hi = min(len(users), lo + SCORE_BATCH)
        idx, _ = model.recommend(history[lo:hi], k, users=user_arg[lo:hi], exclude_seen=True)
        out[lo:hi] = idx
    return out


def holdout_metrics(
    model: Recommender,
    train: Dataset,
    test: Dataset,
    k: int = 10,
    min_rating: float | None = None,
) -> dict[str, float]:
    """Accuracy metrics at ``k`` of a fitted model on a holdout (used by tuning)."""
    target = holdout_target(train, test, min_rating)
    recommended = recommend_users(model, train, target.users, k)
    return m.ranking_metrics(m.ranking_hits(recommended, target.relevant), k)


def diversity_vectors(train: Dataset, source: str = "auto") -> tuple[sp.csr_matrix, str]:
    """Item vectors for intra-list diversity and the name of their source.

    ``genres`` one-hot encodes the items' ``genres`` attribute; ``cooccurrence`` uses the item
    columns of the binarised training matrix (cosine = co-occurrence similarity, Microsoft
    Recommenders' default); ``auto`` picks genres when items carry them.
    """
    if source not in DIVERSITY_SOURCES:
        raise ConfigError(
            f"unknown diversity source {source!r}; use {', '.join(DIVERSITY_SOURCES)}"
        )
    if source in ("auto", "genres"):
        genres = train.item_attribute("genres")
        if any(genres):
            return _one_hot(genres), "genres"
        if source == "genres":
            raise ConfigError("items carry no 'genres' attribute to measure diversity with")
    binary = train.matrix.copy()
    binary.data = np.ones_like(binary.data)
    return sp.csr_matrix(binary.T), "cooccurrence"


def _one_hot(values: list[Any]) -> sp.csr_matrix:
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, value in enumerate(values):
        labels = (
            value if isinstance(value, (list, tuple, set)) else ([] if value is None else [value])
        )
        for label in labels:
            rows.append(row)
            cols.append(vocab.setdefault(str(label), len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(values), max(len(vocab), 1)))


def normalise_models(
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
) -> dict[str, dict]:
    """``["als", ...]`` or ``{"als": {...}}`` as ``{name: params}``, names checked up front."""
    specs = (
        {name: dict(params or {}) for name, params in models.items()}
        if isinstance(models, Mapping)
        else {name: {} for name in models}
    )
    if not specs:
        raise ConfigError("no models to evaluate")
    for name, params in specs.items():
        try:
            create_model(name, **params)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return specs


def check_request(
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
    protocol: str,
    ratio: float,
    k: int,
    ks: Sequence[int],
    diversity: str = "auto",
) -> dict[str, dict]:
    """Validate an evaluation request before any data is read; returns ``{name: params}``."""
    check_protocol(protocol)
    if k < 1 or any(c < 1 for c in ks):
        raise ConfigError("k and every cut-off in ks must be at least 1")
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"ratio must be between 0 and 1, got {ratio}")
    if diversity not in DIVERSITY_SOURCES:
        raise ConfigError(
            f"unknown diversity source {diversity!r}; use {', '.join(DIVERSITY_SOURCES)}"
        )
    return normalise_models(models)


def evaluate_models(
    dataset: Dataset,
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
    protocol: Protocol | str = "stratified",
    ratio: float = 0.75,
    seed: int = 42,
    k: int = 10,
    ks: Sequence[int] = DEFAULT_KS,
    progress: bool = False,
    *,
    min_rating: float | None = None,
    leave_out: int = 1,
    diversity: str = "auto",
    split_keys: str = "hash",
) -> EvaluationResult:
    """Split once, train every model on the training part and score its top-k lists.

    Args:
        dataset: all interactions.
        models: model names, or ``{name: params}``.
        protocol: ``stratified`` (per-user random, ``ratio`` to train), ``temporal`` (the
            latest ``1 - ratio`` of time to test) or ``leave_last`` (each user's last
            ``leave_out`` interactions to test).
        ratio, seed: split parameters.
        k: the cut-off of the headline metrics; ``ks`` the cut-offs of the curves.
        progress: show progress bars.
        min_rating: relevance threshold on test weights (None: every test interaction).
        leave_out: interactions per user held out by ``leave_last``.
        diversity: item vectors for diversity: ``auto``, ``genres`` or ``cooccurrence``.
        split_keys: ``hash`` (order-independent) or ``rows`` (Microsoft Recommenders' draw).
    """
    specs = check_request(models, protocol, ratio, k, ks, diversity)
    train, test = split_dataset(dataset, protocol, ratio, seed, leave_out, split_keys)
    target = holdout_target(train, test, min_rating)
    if target.users.size == 0:
        raise ConfigError("the test split has no user with a relevant item; nothing to evaluate")
    cutoffs = sorted({int(c) for c in ks} | {int(k)})
    depth = max(cutoffs)
    vectors, source = diversity_vectors(train, diversity)
    popularity = train.item_popularity
    results = []
    with ProgressTask("evaluating models", total=len(specs), enabled=progress) as bar:
        for name, params in specs.items():
            bar.update(description=f"evaluating {name}")
            model = create_model(name, **params)
            start = time.perf_counter()
            model.fit(train, progress=progress)
            train_seconds = time.perf_counter() - start
            start = time.perf_counter()
            recommended = recommend_users(
                model, train, target.users, depth, progress, f"{name}: recommending"
            )
            predict_seconds = time.perf_counter() - start
            result = _score(
                name, model, recommended, target, cutoffs, k, vectors, popularity, train
            )
            result.metrics.update(rating_errors(model, test))
            result.train_seconds = round(train_seconds, 3)
            result.predict_seconds = round(predict_seconds, 3)
            results.append(result)
            bar.advance(1)
    return EvaluationResult(
        protocol=protocol,
        ratio=ratio,
        seed=seed,
        k=k,
        ks=cutoffs,
        min_rating=min_rating,
        dataset=dataset.stats(),
        train_interactions=train.n_interactions,
        test_interactions=test.n_interactions,
        users_evaluated=int(target.users.size),
        users_skipped=target.skipped,
        diversity_source=source,
        split_keys=split_keys,
        models=results,
        item_popularity=popularity,
    )


def _score(
    name: str,
    model: Recommender,
    recommended: np.ndarray,
    target: HoldoutTarget,
    cutoffs: list[int],
    k: int,
    vectors: sp.csr_matrix,
    popularity: np.ndarray,
    train: Dataset,
) -> ModelResult:
    hits = m.ranking_hits(recommended, target.relevant)
    curve = {c: m.ranking_metrics(hits, c) for c in cutoffs}
    top = recommended[:, :k]
    headline = dict(curve[k])
    headline.update(
        coverage=m.catalogue_coverage(top, train.n_items),
        diversity=m.intra_list_diversity(_diversity_sample(top), vectors),
        novelty=m.novelty(top, popularity),
        arp=m.average_recommended_popularity(top, popularity),
    )
    return ModelResult(
        name=name,
        params=dict(model.params),
        metrics={key: round(float(v), 6) for key, v in headline.items()},
        curve={c: {key: round(float(v), 6) for key, v in row.items()} for c, row in curve.items()},
        train_seconds=0.0,
        predict_seconds=0.0,
        recommended=top,
    )


def rating_errors(model: Recommender, test: Dataset) -> dict[str, float]:
    """RMSE and MAE of a rating-predicting model on the test interactions' weights (the
    ratings, under the default event weights); nothing for models that rank only."""
    if not isinstance(model, RatingPredictor) or test.n_interactions == 0:
        return {}
    predicted = model.predict_ratings(test.user_idx, test.item_idx)
    return {
        "rmse": round(m.rmse(predicted, test.weight), 6),
        "mae": round(m.mae(predicted, test.weight), 6),
    }


def _diversity_sample(recommended: np.ndarray) -> np.ndarray:
    """At most ``DIVERSITY_SAMPLE`` lists, drawn with a fixed seed so reruns agree."""
    if recommended.shape[0] <= DIVERSITY_SAMPLE:
        return recommended
    rows = np.random.default_rng(0).choice(recommended.shape[0], DIVERSITY_SAMPLE, replace=False)
    return recommended[np.sort(rows)]
