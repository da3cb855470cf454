"""``--model auto``: pick and tune a model family for the data within a time budget.

A new user should not need a tuning guide. ``auto_select`` scores every candidate family with
its data-scaled defaults, then spends what is left of the budget on Optuna trials per family
(the defaults stay in the race). When the ``ranking`` extra is installed and the budget holds
its expected time, it then scores ``two_stage`` over the best configuration of every family
(a reranker beats its best retriever on MovieLens). The finalists (each family's best and
``two_stage``) are compared on a second validation split, not the one the trials were chosen
on, and the best by NDCG@10 is returned. ``train_and_register`` calls it on the *training
part* of its evaluation split, so the holdout metrics recorded with the chosen version were
never seen while choosing.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass, field
from typing import Any

from recstack.data.dataset import Dataset
from recstack.data.splits import stratified_split
from recstack.errors import ConfigError
from recstack.evaluation.protocol import holdout_metrics
from recstack.models.catalog import create_model
from recstack.models.ease import EASEConfig
from recstack.models.ranking.config import TwoStageConfig
from recstack.models.ranking.two_stage import auto_bags
from recstack.progress import ProgressTask
from recstack.workflows.tune import tune

AUTO = "auto"
FAMILIES: tuple[str, ...] = ("ease", "als", "itemknn")
DEFAULT_BUDGET_SECONDS = 120.0
VALIDATION_RATIO = 0.8  # the split tune() carves too, so defaults and trials share one judge
STACKED = "two_stage"
LIST_SECONDS = 0.005  # building, featurising and boosting one user's candidate list (2 cores)


@dataclass
class Candidate:
    """One scored configuration: a family, its parameters and its validation score."""

    model: str
    params: dict[str, Any]
    score: float
    tuned: bool


@dataclass
class AutoChoice:
    """What ``auto_select`` chose, everything it tried while tuning (``candidates``, scored on
    the tuning split) and the finalists it chose among (scored on ``judge_split``), best first."""

    model: str
    params: dict[str, Any]
    score: float
    metric: str
    seconds: float
    candidates: list[Candidate] = field(default_factory=list)
    finalists: list[Candidate] = field(default_factory=list)

    def summary(self) -> dict[str, str]:
        """Flat tags for the registry: the choice and each finalist's score on the judging
        split (the scores the choice was made on)."""
        tags = {f"recstack.auto.{c.model}_{self.metric}": f"{c.score:.4f}" for c in self.finalists}
        tags.update(
            {
                "recstack.auto.choice": self.model,
                "recstack.auto.seconds": f"{self.seconds:.1f}",
                "recstack.auto.trials": str(len(self.candidates)),
            }
        )
        return tags


def candidate_families(dataset: Dataset, families: tuple[str, ...] = FAMILIES) -> list[str]:
    """The families that can model ``dataset`` (EASE needs the catalogue to fit in memory)."""
    out = [f for f in families if f != "ease" or dataset.n_items <= EASEConfig().max_items]
    if not out:
        raise ConfigError(f"no model family in {families} can model {dataset.n_items:,} items")
    return out


def stack_seconds(cost: dict[str, float], users: int) -> float:
    """Expected seconds to fit and score ``two_stage`` over retrievers whose one fit and
    scoring took ``cost``: each is refit on every fold of every bag and once on all the data,
    and every bag's folds build a candidate list per user, as scoring it on the validation
    split does once more (ML-100K: 0.7 s of retriever fits against 34 s in all, most of it lists
    and boosters).

    >>> stack_seconds({"als": 2.0, "ease": 1.0}, users=900)  # 7 fits; 3 bags x 2 folds + 1 list
    52.5
    """
    config = TwoStageConfig()
    lists = min(users, config.max_users or users) * config.folds
    bags = auto_bags(lists)
    fits = (bags * config.folds + 1) * sum(cost.values())
    return fits + (bags * lists + users) * LIST_SECONDS


def ranking_installed() -> bool:
    """Whether the ``ranking`` extra (LightGBM) is importable."""
    return importlib.util.find_spec("lightgbm") is not None


def auto_select(
    dataset: Dataset,
    *,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    families: tuple[str, ...] = FAMILIES,
    stack: bool = True,
    seed: int = 42,
    k: int = 10,
    metric: str = "ndcg",
    progress: bool = False,
) -> AutoChoice:
    """The best family and parameters for ``dataset`` by ``metric``@k on a validation split.

    Args:
        dataset: training data only (two per-user 80/20 splits of it are carved here: one
            to tune on, one to judge the finalists on).
        budget_seconds: wall-clock budget for the whole search. Defaults are always scored;
            each family is then tuned in its share of what is left (cheapest first), starting
            no trial that would end past that share if it took as long as the longest one so
            far, and not at all when its share holds fewer than two default fits.
        families: model families to consider.
        stack: also score ``two_stage`` over the best of every family (with the ``ranking``
            extra, two families or more, and its expected time within the budget: that time is
            held back from tuning, as is one more fit per family to judge it).
    """
    if budget_seconds <= 0:
        raise ConfigError(f"budget_seconds must be positive, got {budget_seconds}")
    start = time.perf_counter()
    names = candidate_families(dataset, families)
    train, valid = stratified_split(dataset, ratio=VALIDATION_RATIO, seed=seed)
    candidates: list[Candidate] = []
    cost: dict[str, float] = {}  # seconds one default fit and scoring took, per family
    with ProgressTask("auto: scoring defaults", total=len(names), enabled=progress) as bar:
        for name in names:
            began = time.perf_counter()
            fitted = create_model(name).fit(train)
            score = holdout_metrics(fitted, train, valid, k=k)[metric]
            cost[name] = time.perf_counter() - began
            candidates.append(Candidate(name, fitted.get_params(), score, tuned=False))
            bar.advance(1)
    reserve = stack_seconds(cost, train.n_users)
    stack = stack and len(names) > 1 and ranking_installed()
    stack = stack and reserve <= budget_seconds - (time.perf_counter() - start)
    reserve = (reserve if stack else 0.0) + sum(cost.values())
    # cheapest first: what one family leaves of its share goes to the next ones
    for i, name in enumerate(sorted(names, key=cost.__getitem__)):
        left = budget_seconds - reserve - (time.perf_counter() - start)
        share = left / (len(names) - i)
        if share < 2 * cost[name]:  # not even two trials fit: keep the default
            continue
        params, score = _tune_for(dataset, name, share, cost[name], seed, metric, k, progress)
        if params is not None:
            candidates.append(Candidate(name, params, score, tuned=True))
    judge = judge_split(dataset, seed)
    finalists = _rejudged(judge, _best_per_family(candidates), k, metric, progress)
    if stack:
        finalists.append(_stacked(judge, finalists, k, metric, progress))
    finalists.sort(key=lambda c: c.score, reverse=True)
    candidates.sort(key=lambda c: c.score, reverse=True)
    best = finalists[0]
    return AutoChoice(
        model=best.model,
        params=best.params,
        score=best.score,
        metric=metric,
        seconds=time.perf_counter() - start,
        candidates=candidates,
        finalists=finalists,
    )


def judge_split(dataset: Dataset, seed: int) -> tuple[Dataset, Dataset]:
    """The split the finalists are compared on: not the one that tuned them, whose best
    trial's score is biased upward by the choice among trials (on ML-100K tuned ALS scored
    above ``two_stage`` there and below it on the held-out test)."""
    return stratified_split(dataset, ratio=VALIDATION_RATIO, seed=seed + 1)


def _best_per_family(candidates: list[Candidate]) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.model not in best or c.score > best[c.model].score:
            best[c.model] = c
    return list(best.values())


def _rejudged(
    judge: tuple[Dataset, Dataset],
    best: list[Candidate],
    k: int,
    metric: str,
    progress: bool,
) -> list[Candidate]:
    """Each family's best configuration refit and scored on the ``judge_split``."""
    train, valid = judge
    out = []
    with ProgressTask("auto: judging the finalists", total=len(best), enabled=progress) as bar:
        for c in best:
            fitted = create_model(c.model, **c.params).fit(train)
            out.append(
                Candidate(
                    c.model, c.params, holdout_metrics(fitted, train, valid, k=k)[metric], c.tuned
                )
            )
            bar.advance(1)
    return out


def _stacked(
    judge: tuple[Dataset, Dataset],
    finalists: list[Candidate],
    k: int,
    metric: str,
    progress: bool,
) -> Candidate:
    """``two_stage`` with every family's best configuration as its retrievers, scored on the
    finalists' ``judge_split``."""
    order = sorted(finalists, key=lambda c: -c.score)  # the first explains "because you liked"
    params = {
        "retrievers": ",".join(c.model for c in order),
        "retriever_params": json.dumps({c.model: c.params for c in order}, sort_keys=True),
    }
    train, valid = judge
    with ProgressTask("auto: two_stage over the best retrievers", total=1, enabled=progress) as bar:
        fitted = create_model(STACKED, **params).fit(train)
        score = holdout_metrics(fitted, train, valid, k=k)[metric]
        bar.advance(1)
    return Candidate(STACKED, fitted.get_params(), score, tuned=False)


def _tune_for(
    dataset: Dataset,
    name: str,
    seconds: float,
    trial_seconds: float,
    seed: int,
    metric: str,
    k: int,
    progress: bool,
) -> tuple[dict[str, Any] | None, float]:
    """Optuna on ``name`` within ``seconds`` (a trial expected to take ``trial_seconds`` at
    first); (None, -inf) when no trial finished."""
    try:
        best, value, _ = tune(
            dataset,
            name,
            trials=1000,
            seed=seed,
            metric=metric,
            k=k,
            progress=progress,
            timeout=seconds,
            trial_seconds=trial_seconds,
            validation_ratio=VALIDATION_RATIO,
        )
    except ValueError:  # optuna: no trial completed within the time
        return None, float("-inf")
    return best, value
