"""``two_stage``: retrievers propose, a LightGBM reranker orders.

Any catalogue models serve as retrievers (ALS, EASE, ItemKNN, popularity, ...). Each proposes
its top ``candidates`` unseen items; the merged lists get the features of
``recstack.models.ranking.features`` and the booster's score. Items no retriever proposed
rank below every candidate, ordered by popularity, so filters that remove the candidates still
leave a list. How the reranker is trained so it transfers to the refitted retrievers is in
``recstack.models.ranking.training``; what was tried and did not work is in ``docs/ranking.md``.

The artifact is the usual directory plus ``reranker.txt`` (LightGBM's text format) and one
sub-directory per retriever under ``retrievers/`` — no pickle anywhere.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recstack import tracing
from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.base import Recommender, as_histories, masked_top, top_k
from recstack.models.config import ModelConfig
from recstack.models.names import resolve
from recstack.models.ranking import lgbm
from recstack.models.ranking.anchor import anchor_scores, choose_anchor, monotone_constraints
from recstack.models.ranking.candidates import Candidates, candidate_top, generate
from recstack.models.ranking.compiled import Predictor, compile_predictor
from recstack.models.ranking.config import TwoStageConfig
from recstack.models.ranking.diversity import mmr_order
from recstack.models.ranking.features import (
    ItemSpace,
    context_codes,
    feature_names,
    pair_features,
)
from recstack.models.ranking.training import fold_lists, retriever_params
from recstack.progress import ProgressTask

DIVERSITY_DEPTH = 50  # top items re-ordered by MMR
AUTO_BAGS_LISTS = 10_000  # training lists from which one booster is steady enough


def auto_bags(lists: int) -> int:
    """Boosters to average when ``bags`` is not set, from the training lists one booster
    learns from: a few thousand lists (ML-100K's 1,900) give a noisy booster that averaging
    steadies; from 10,000 on, one booster (a third of the training time and of the trees).

    >>> auto_bags(1_886), auto_bags(20_000)
    (3, 1)
    """
    return 3 if lists < AUTO_BAGS_LISTS else 1


class TwoStageRecommender(Recommender):
    """Candidate retrieval by several models, reranked by LightGBM."""

    name: ClassVar[str] = "two_stage"
    config_class: ClassVar[type[ModelConfig]] = TwoStageConfig
    # per call, not per user: 2.9 ms for one user, 1.1 ms each for 16 (the 25M set)
    batch_serving: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.retrievers: list[Recommender] = []
        self.space: ItemSpace | None = None
        self.booster: Any = None
        self.report: dict[str, Any] = {}
        self.anchor_spec: dict[str, Any] = {}
        self._compiled: Predictor | None = None  # the booster as machine code, once compiled

    # ---- configuration ------------------------------------------------------------------------
    @property
    def retriever_names(self) -> list[str]:
        return self.config.retrievers.split(",")

    @property
    def context_keys(self) -> list[str]:
        return [k.strip() for k in self.config.context_keys.split(",") if k.strip()]

    @property
    def feature_names(self) -> list[str]:
        assert self.space is not None
        return feature_names(
            self.retriever_names,
            np.asarray(self.space.numeric).shape[1],
            self.context_keys,
            self.config.standardised_scores,
            np.asarray(self.space.key_codes).shape[1],
        )

    def _new_retrievers(self) -> list[Recommender]:
        given = json.loads(self.config.retriever_params or "{}")
        unknown = sorted(set(given) - set(self.retriever_names))
        if unknown:
            raise ConfigError(f"two_stage: retriever_params for models not retrieving: {unknown}")
        defaults = {n: resolve(n).defaults for n in self.retriever_names}
        params = retriever_params(self.retriever_names, given, defaults)
        return [resolve(n).from_params(params[n]) for n in self.retriever_names]

    # ---- training -------------------------------------------------------------------------------
    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        cfg = self.config
        lgbm.lightgbm()  # fail before any retriever is fitted when the extra is missing
        folds = cfg.folds if cfg.split == "random" else 1
        users = min(dataset.n_users, cfg.max_users or dataset.n_users)
        bags = cfg.bags or auto_bags(users * folds)
        total = bags * (folds + 1) + 1
        with ProgressTask("two_stage: training", total=total, enabled=progress) as bar:
            self.space = ItemSpace.fit(dataset, cfg.half_life_days)
            self._compiled = None
            models, summaries = [], []
            for bag in range(bags):
                booster, summary = self._fit_booster(dataset, folds, bag, bar.advance)
                models.append(booster.model_to_string())
                summaries.append(summary)
                bar.advance()
            if len(models) > 1:
                booster = lgbm.booster_from_text(lgbm.average_models(models))
            self.booster = booster
            self.retrievers = [model.fit(dataset) for model in self._new_retrievers()]
            bar.advance()
        rounds = [summary.pop("trees") for summary in summaries]
        # the first booster's lists: each booster of the bag learnt from lists of its own
        self.report = {**summaries[0], "bags": bags, "rounds": rounds}

    def _fit_booster(
        self, dataset: Dataset, folds: int, bag: int, advance: Callable[[], object]
    ) -> tuple[Any, dict[str, Any]]:
        """One booster of the bag, on out-of-fold lists of its own fold seeds (the first
        bag's lists choose the anchor every booster starts from)."""
        cfg = self.config
        lists = fold_lists(
            dataset,
            self._new_retrievers,
            self.retriever_names,
            depth=cfg.candidates,
            share=cfg.holdout,
            folds=folds,
            split=cfg.split,
            seed=cfg.seed + bag * folds,
            half_life_days=cfg.half_life_days,
            context_features=cfg.context_features,
            n_context=len(self.context_keys),
            standardised=cfg.standardised_scores,
            max_users=cfg.max_users,
            advance=advance,
        )
        features, labels, groups = lists.stacked()
        if len(groups) == 0:
            raise ConfigError("two_stage: no user has held-out events to learn ranking from")
        names = self.feature_names
        quality: dict[str, float] = {}
        if bag == 0:
            rows = np.repeat(np.arange(len(groups)), groups)
            column, kind, quality = choose_anchor(
                features, rows, labels, names, self.retriever_names
            )
            self.anchor_spec = {"column": column, "kind": kind} if cfg.anchor else {}
        spec = self.anchor_spec
        booster = lgbm.train_booster(
            features,
            labels,
            groups,
            names,
            rounds=cfg.rounds,
            learning_rate=cfg.learning_rate,
            num_leaves=cfg.num_leaves,
            min_data_in_leaf=cfg.min_data_in_leaf,
            seed=cfg.seed + bag,
            init_score=anchor_scores(features, spec["column"], spec["kind"]) if spec else None,
            monotone=monotone_constraints(names, self.retriever_names) if cfg.monotone else None,
            objective=cfg.objective,
            early_stopping=cfg.early_stopping,
            validation=cfg.validation,
            group_keys=lists.group_users(),
        )
        summary = {
            "candidate_recall": lists.summary(self.retriever_names),
            "training_lists": int(len(groups)),
            "training_rows": int(len(labels)),
            "anchor": spec,
            "training_list_ndcg": quality,
            "trees": int(booster.num_trees()),
        }
        return booster, summary

    # ---- scoring ----------------------------------------------------------------------------------
    def _features(
        self,
        cands: Candidates,
        h: sp.csr_matrix,
        users: np.ndarray | None,
        context: Mapping[str, Any] | None,
    ) -> np.ndarray:
        assert self.space is not None
        hour = weekday = math.nan
        if self.config.context_features and context is not None:
            now = datetime.fromtimestamp(
                float(context.get("timestamp", datetime.now(UTC).timestamp())), UTC
            )
            hour, weekday = float(now.hour), float(now.weekday())
        codes = context_codes(context, self.context_keys)
        return pair_features(self.space, cands, h, users, hour=hour, weekday=weekday, context=codes)

    def _predict(self, features: np.ndarray) -> np.ndarray:
        """The booster's score plus the anchor it was boosted from."""
        compiled = self._compiled
        pred = lgbm.predict(self.booster, features) if compiled is None else compiled(features)
        spec = self.anchor_spec
        if spec:
            pred = pred + anchor_scores(features, spec["column"], spec["kind"]).astype(np.float32)
        return pred

    def compile_scoring(self, cache_dir: Path, *, background: bool = False) -> None:
        """Score with the booster compiled to machine code (``ranking.compiled``), cached in
        ``cache_dir``; in ``background`` the booster keeps predicting until the code is ready."""
        booster = self.booster
        if booster is None or self._compiled is not None:
            return
        text = booster.model_to_string()

        def run() -> None:
            compiled = compile_predictor(text, cache_dir)
            if compiled is not None and self.booster is booster:  # not refitted meanwhile
                self._compiled = compiled

        if background:
            threading.Thread(target=run, name="recstack-compile", daemon=True).start()
        else:
            run()

    def candidates(self, histories: sp.csr_matrix, users: np.ndarray | None) -> Candidates:
        """The merged candidate lists of the fitted retrievers."""
        return generate(
            self.retrievers,
            histories,
            users,
            self.config.candidates,
            standardised=self.config.standardised_scores,
        )

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return self.score_with_context(histories, users, None)

    def score_with_context(
        self, histories: sp.csr_matrix, users: np.ndarray | None, context: Mapping[str, Any] | None
    ) -> np.ndarray:
        """Dense scores: candidates get the reranker's score, other items less than any."""
        h = as_histories(histories, self.n_items)
        return self._dense(h, *self._reranked(h, users, context))

    def _reranked(
        self, h: sp.csr_matrix, users: np.ndarray | None, context: Mapping[str, Any] | None
    ) -> tuple[Candidates, np.ndarray]:
        """The candidates of ``h``'s rows and the reranker's score of each."""
        with tracing.span("recstack.retrieval.candidates"):
            cands = self.candidates(h, users)
        with tracing.span("recstack.reranking"):
            pred = (
                self._predict(self._features(cands, h, users, context))
                if len(cands.items)
                else np.empty(0, dtype=np.float32)  # nothing proposed: the popularity order
            )
        return cands, pred

    def _dense(self, h: sp.csr_matrix, cands: Candidates, pred: np.ndarray) -> np.ndarray:
        """Every item's score: each row's candidates their ``pred``, then the other items in
        popularity order below the row's least candidate score."""
        n = h.shape[0]
        floor = np.zeros(n, dtype=np.float32)
        if len(pred):
            floor = np.full(n, float(pred.min()), dtype=np.float32)
            np.minimum.at(floor, cands.rows, pred)
        assert self.space is not None
        popularity = np.asarray(self.space.item_dense[:, 0], dtype=np.float32)
        out = (floor - 2.0)[:, None] + popularity[None, :]
        out[cands.rows, cands.items] = pred
        if self.config.diversity > 0:
            self._diversify(out, h)
        return out

    def _batch_top(
        self,
        h: sp.csr_matrix,
        users: np.ndarray | None,
        k: int,
        *,
        exclude_seen: bool,
        exclude: sp.csr_matrix | None,
        item_mask: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` from the candidates alone when every row has ``k`` eligible ones (and no
        diversity reorders the list): no other item can outrank them, so the dense rows are
        built only for a batch where some row falls short."""
        cands, pred = self._reranked(h, users, None)
        if self.config.diversity == 0:
            excluded = [m for m, on in ((h, exclude_seen), (exclude, exclude is not None)) if on]
            found = candidate_top(cands, pred, k, exclude=excluded, mask=item_mask)
            if found is not None:
                return found
        return masked_top(
            self._dense(h, cands, pred),
            h,
            k,
            exclude_seen=exclude_seen,
            exclude=exclude,
            mask=item_mask,
        )

    def _diversify(self, out: np.ndarray, h: sp.csr_matrix) -> None:
        """Re-order each row's top items by MMR over the items' attribute tokens, in place."""
        assert self.space is not None
        tokens = sp.csr_matrix(self.space.tokens)
        if tokens.nnz == 0:
            return
        depth = min(DIVERSITY_DEPTH, out.shape[1])
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        scored = out.copy()
        scored[rows, h.indices] = -np.inf  # seen items are not diversified into the list
        idx, val = top_k(scored, depth)
        vectors = tokens[np.maximum(idx, 0).ravel()].toarray().reshape(*idx.shape, -1)
        order = mmr_order(val, vectors, depth, self.config.diversity)
        picked = np.take_along_axis(idx, order, axis=1)
        top = out.max(axis=1, keepdims=True)
        new = top + np.arange(depth, 0, -1, dtype=np.float32)[None, :]
        r = np.broadcast_to(np.arange(out.shape[0])[:, None], picked.shape)
        ok = picked >= 0
        out[r[ok], picked[ok]] = new[:, : picked.shape[1]][ok]

    def requested(
        self, history: sp.csr_matrix, users: np.ndarray | None, items: np.ndarray
    ) -> Candidates:
        """Candidate rows for exactly ``items`` for one history row (rank features filled in
        where a retriever proposed the item, absent otherwise)."""
        h = as_histories(history, self.n_items)
        return generate(
            self.retrievers,
            h,
            users,
            self.config.candidates,
            standardised=self.config.standardised_scores,
            extra=np.asarray(items, dtype=np.int64)[None, :],
        )

    def rank_features(
        self,
        history: sp.csr_matrix,
        users: np.ndarray | None,
        items: Sequence[int],
        context: Mapping[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(items, features)`` for one user and the requested ``items`` (sorted by index)."""
        h = as_histories(history, self.n_items)
        cands = self.requested(h, users, np.unique(np.asarray(items, dtype=np.int64)))
        return cands.items, self._features(cands, h, users, context)

    def score_items(
        self,
        history: sp.csr_matrix,
        users: np.ndarray | None,
        items: Sequence[int],
        context: Mapping[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The reranker's scores of exactly ``items`` for one user: ``(items, scores)``."""
        idx, features = self.rank_features(history, users, items, context)
        return idx, self._predict(features)

    def contributions(
        self, history: sp.csr_matrix, users: np.ndarray | None, items: Sequence[int], top: int = 3
    ) -> dict[int, list[tuple[str, float]]]:
        """The features that moved each item's score most (LightGBM ``pred_contrib``)."""
        idx, features = self.rank_features(history, users, items)
        contrib = lgbm.contributions(self.booster, features)[:, :-1]
        names = list(self.feature_names)
        spec = self.anchor_spec
        if spec:  # the ranking the booster started from is a contribution of its own
            anchor = anchor_scores(features, spec["column"], spec["kind"])
            contrib = np.column_stack([contrib, anchor])
            names.append(f"anchor:{names[spec['column']]}")
        order = np.argsort(-np.abs(contrib), axis=1)[:, :top]
        return {
            int(item): [(names[j], float(contrib[r, j])) for j in order[r]]
            for r, item in enumerate(idx)
        }

    # ---- item-to-item and explanations: the first retriever's -----------------------------------
    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return self.retrievers[0].item_similarity(items)

    def explain(self, history: sp.csr_matrix, item: int, top: int = 3) -> list[tuple[int, float]]:
        return self.retrievers[0].explain(history, item, top)

    # ---- persistence ------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        assert self.space is not None, "two_stage is not fitted"
        return self.space.state()

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.space = ItemSpace.from_state(state)

    def _save_parts(self, directory: Path) -> None:
        (directory / "reranker.txt").write_text(self.booster.model_to_string())
        (directory / "report.json").write_text(json.dumps(self.report, indent=2))
        for name, model in zip(self.retriever_names, self.retrievers, strict=True):
            model.save(directory / "retrievers" / name)

    def _load_parts(self, directory: Path, mmap: bool) -> None:
        self.booster = lgbm.booster_from_text((directory / "reranker.txt").read_text())
        self._compiled = None
        if self.config.standardised_scores and not any(
            name.endswith("_z") for name in self.booster.feature_name()
        ):  # saved before standardised scores were a default: its booster reads no z columns
            self.config = self.config.model_copy(update={"standardised_scores": False})
        report = directory / "report.json"
        self.report = json.loads(report.read_text()) if report.exists() else {}
        self.anchor_spec = dict(self.report.get("anchor") or {})
        self.retrievers = [
            Recommender.load(directory / "retrievers" / name, mmap=mmap)
            for name in self.retriever_names
        ]
