"""The Recommender contract every model implements, and the artifact format they share.

A model learns from a ``Dataset`` and then scores *histories*: rows of a user x item sparse
matrix. Known users may also pass their training index so factor models use learned factors;
a user the model never saw (index -1) is scored by ``fold_in`` from the history alone. The
same ``recommend`` does exclusion, attribute filters and top-k for every model.

Parameters live in one typed, validated config per model (``config_class``, see
``recstack.models.config``); ``get_params``/``from_params`` turn it into the flat dict that the
CLI, the admin API, tuning, MLflow and TOML files exchange.

Artifacts are a directory: ``model.json`` (model name, params, meta) plus one ``.npy`` per array
(sparse matrices as ``name.data/indices/indptr/shape``), so they load with ``mmap_mode='r'`` and
several server workers share one copy of the arrays. No pickle. The class is found again by the
saved name through the catalogue's table (``recstack.models.names``, which
``recstack.models.catalog`` serves), never by importing a path read from the file.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

import recstack
from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.errors import ConfigError
from recstack.models.config import (
    ModelConfig,
    config_defaults,
    config_from_defaults,
    parse_config,
)
from recstack.models.names import MODELS, resolve
from recstack.topk import exclusion, top_k

SCORE_BATCH = 1024  # rows scored densely at once; bounds memory at SCORE_BATCH x n_items floats


@dataclass
class ArtifactMeta:
    """What a trained model is: its config, the data it saw, how well it did, what built it."""

    model: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    n_users: int = 0
    n_items: int = 0
    n_interactions: int = 0
    train_seconds: float = 0.0
    trained_at: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers."""
    out = {"recstack": recstack.__version__, "python": platform.python_version()}
    # read installed versions from package metadata: importing torch & co. just to ask their
    # version would add seconds to every fit
    distributions = {
        "numpy": ("numpy",),
        "scipy": ("scipy",),
        "implicit": ("implicit",),
        "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
        "torch": ("torch",),
        "sentence_transformers": ("sentence-transformers",),
    }
    for mod, names in distributions.items():
        for dist in names:
            try:
                out[mod] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def as_histories(histories: sp.spmatrix | np.ndarray, n_items: int) -> sp.csr_matrix:
    """Coerce histories to float32 CSR with ``n_items`` columns (extra columns dropped)."""
    h = sp.csr_matrix(histories, dtype=np.float32)
    if h.shape[1] > n_items:
        h = h[:, :n_items]
    elif h.shape[1] < n_items:
        h = sp.csr_matrix((h.data, h.indices, h.indptr), shape=(h.shape[0], n_items))
    return h


class Recommender(ABC):
    """Base of every model. Subclasses set ``name`` and ``config_class`` and implement
    ``_fit``, ``score``, ``similar_items`` (or ``item_vectors``) and ``_state``/``_set_state``.

    ``defaults`` is derived from ``config_class``. A subclass that declares only a
    ``defaults`` dict gets an untyped config built from it, so small hand-written models need
    no pydantic class.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config_class" in cls.__dict__:
            cls.defaults = config_defaults(cls.config_class)
        elif "defaults" in cls.__dict__:
            cls.config_class = config_from_defaults(cls.__name__, cls.defaults)

    def __init__(self, **params: Any) -> None:
        self.config: ModelConfig = parse_config(type(self).config_class, self.name, params)
        self.users: IdMap = IdMap()
        self.items: IdMap = IdMap()
        self.meta = ArtifactMeta(model=self.name, params=self.get_params())

    # ---- parameters ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Every parameter as a flat dict (a copy): what ``from_params`` takes back."""
        return self.config.model_dump()

    @property
    def params(self) -> dict[str, Any]:
        """Read-only view of ``get_params()``, kept for callers that read ``model.params``."""
        return self.get_params()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        """A new unfitted model from a flat dict; an ``InvalidParamsError`` names bad keys."""
        return cls(**dict(params))

    # ---- training ------------------------------------------------------------------------------
    def fit(self, dataset: Dataset, progress: bool = False) -> Self:
        """Learn from ``dataset``; records meta (fingerprint, sizes, seconds, versions)."""
        start = time.perf_counter()
        self.users, self.items = dataset.users, dataset.items
        self._fit(dataset, progress=progress)
        self.meta = ArtifactMeta(
            model=self.name,
            params=self.get_params(),
            data_fingerprint=dataset.fingerprint,
            n_users=dataset.n_users,
            n_items=dataset.n_items,
            n_interactions=dataset.n_interactions,
            train_seconds=round(time.perf_counter() - start, 3),
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
            versions=library_versions(),
        )
        return self

    @abstractmethod
    def _fit(self, dataset: Dataset, progress: bool = False) -> None: ...

    @property
    def n_items(self) -> int:
        return len(self.items)

    # ---- scoring -------------------------------------------------------------------------------
    @abstractmethod
    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Dense float32 scores ``(n, n_items)`` for ``n`` histories.

        ``users`` are the rows' training indices (-1 for users the model never saw); models with
        per-user parameters use them for known users and fold in the history for the rest.
        """

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """Representation of users from their histories alone (default: scores themselves)."""
        return self.score(as_histories(histories, self.n_items), None)

    def recommend(
        self,
        histories: sp.spmatrix | np.ndarray,
        k: int = 10,
        *,
        users: np.ndarray | None = None,
        exclude: sp.spmatrix | None = None,
        exclude_seen: bool = True,
        item_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per history row, best first.

        Args:
            histories: ``(n, n_items)`` sparse matrix of past interactions.
            users: training indices of the rows (-1 unknown), or None to fold in all.
            exclude: extra items per row never to return (sparse, nonzero = excluded).
            exclude_seen: drop items in the history.
            item_mask: boolean ``(n_items,)`` (same for all rows) or ``(n, n_items)``; only
                true items may be returned (attribute filters, active items).

        Returns ``(idx, scores)`` of shape ``(n, k)``; rows with fewer than k eligible items are
        padded with index -1 and score ``-inf``.
        """
        h = as_histories(histories, self.n_items)
        n = h.shape[0]
        if users is not None:
            users = np.asarray(users, dtype=np.int64)
            if users.shape != (n,):
                raise ValueError("users must have one entry per history row")
        ex = as_histories(exclude, self.n_items) if exclude is not None else None
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_val = np.full((n, k), -np.inf, dtype=np.float32)
        mask = None if item_mask is None else np.asarray(item_mask, dtype=bool)
        whole = n <= SCORE_BATCH  # one batch: no row slices (a served request is one row)
        for lo in range(0, n, SCORE_BATCH):
            hi = min(n, lo + SCORE_BATCH)
            idx, val = self._batch_top(
                h if whole else h[lo:hi],
                None if users is None else users[lo:hi],
                k,
                exclude_seen=exclude_seen,
                exclude=ex if ex is None or whole else ex[lo:hi],
                item_mask=None if mask is None else (mask if mask.ndim == 1 else mask[lo:hi]),
            )
            out_idx[lo:hi, : idx.shape[1]] = idx
            out_val[lo:hi, : val.shape[1]] = val
        return out_idx, out_val

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
        """``recommend`` of one batch of rows: the dense scores, masked, cut to ``k``."""
        scores = np.array(self.score(h, users), dtype=np.float32)
        return masked_top(scores, h, k, exclude_seen=exclude_seen, exclude=exclude, mask=item_mask)

    def similar_items(self, items: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k most similar items to each of ``items`` (the item itself excluded)."""
        items = np.asarray(items, dtype=np.int64)
        sims = self.item_similarity(items)
        sims[np.arange(len(items)), items] = -np.inf
        return top_k(sims, k)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Dense ``(len(items), n_items)`` similarity of ``items`` to every item.

        Default: score a one-item history; factor and item-item models override with a
        proper similarity.
        """
        rows = np.arange(len(items))
        h = sp.csr_matrix(
            (np.ones(len(items), np.float32), (rows, items)), shape=(len(items), self.n_items)
        )
        return np.array(self.score(h, None), dtype=np.float32)

    def explain(self, history: sp.csr_matrix, item: int, top: int = 3) -> list[tuple[int, float]]:
        """History items that contributed most to recommending ``item``: ``[(item_idx, weight)]``.

        Default: similarity of ``item`` to each history item times the history weight.
        """
        h = as_histories(history, self.n_items)
        if h.nnz == 0:
            return []
        sims = self.item_similarity(np.array([item]))[0]
        contrib = sims[h.indices] * h.data
        order = np.argsort(-contrib)[:top]
        return [(int(h.indices[j]), float(contrib[j])) for j in order if contrib[j] > 0]

    # ---- persistence ---------------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Arrays that define the fitted model."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        """Restore from ``_state()`` output (arrays may be read-only memory maps)."""

    def save(self, directory: Path | str) -> Path:
        """Write the artifact directory (``model.json``, ids, one ``.npy`` per array)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays: list[str] = []
        sparse: list[str] = []
        for key, value in self._state().items():
            if sp.issparse(value):
                csr = sp.csr_matrix(value)
                for part in ("data", "indices", "indptr"):
                    np.save(d / f"{key}.{part}.npy", getattr(csr, part))
                np.save(d / f"{key}.shape.npy", np.asarray(csr.shape, dtype=np.int64))
                sparse.append(key)
            else:
                np.save(d / f"{key}.npy", np.ascontiguousarray(value))
                arrays.append(key)
        self.users.save(d / "users.json")
        self.items.save(d / "items.json")
        self._save_parts(d)
        manifest = {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "name": self.name,
            "params": self.get_params(),
            "arrays": arrays,
            "sparse": sparse,
            "meta": asdict(self.meta),
        }
        (d / "model.json").write_text(json.dumps(manifest, indent=2, default=str))
        return d

    def _save_parts(self, directory: Path) -> None:
        """Write what is not an array (a composite model's parts); nothing by default."""
        return None

    def _load_parts(self, directory: Path, mmap: bool) -> None:
        """Read back what ``_save_parts`` wrote; nothing by default."""
        return None

    @classmethod
    def load(cls, directory: Path | str, mmap: bool = True) -> Recommender:
        """Load any saved model, arrays memory-mapped.

        The class is the catalogue's entry for the saved model name (or ``cls`` itself when it
        is the class that saved it), so an artifact can only instantiate a known model.
        """
        d = Path(directory)
        manifest = json.loads((d / "model.json").read_text())
        klass = cls._saved_class(manifest, d)
        model = klass.from_params(manifest.get("params") or {})
        mode = "r" if mmap else None
        state: dict[str, np.ndarray | sp.csr_matrix] = {
            key: np.load(d / f"{key}.npy", mmap_mode=mode) for key in manifest["arrays"]
        }
        for key in manifest["sparse"]:
            parts = [
                np.load(d / f"{key}.{p}.npy", mmap_mode=mode) for p in ("data", "indices", "indptr")
            ]
            shape = tuple(int(x) for x in np.load(d / f"{key}.shape.npy"))
            state[key] = sp.csr_matrix(tuple(parts), shape=shape, copy=False)
        model.users = IdMap.load(d / "users.json")
        model.items = IdMap.load(d / "items.json")
        model.meta = ArtifactMeta(**manifest["meta"])
        model._set_state(state)
        model._load_parts(d, mmap)
        return model

    @classmethod
    def _saved_class(cls, manifest: Mapping[str, Any], directory: Path) -> type[Recommender]:
        """The class an artifact's ``model.json`` names, checked to be a ``cls``."""
        name = manifest.get("name")
        if not isinstance(name, str):  # a manifest without a name: match its class path
            path = str(manifest.get("class", ""))
            name = next((key for key, value in MODELS.items() if value == path), None)
            if name is None:
                raise ConfigError(f"{directory / 'model.json'}: names no model ({path!r})")
        if name == cls.name and not getattr(cls, "__abstractmethods__", None):
            return cls
        try:
            klass = resolve(name)
        except ConfigError as exc:
            raise ConfigError(f"{directory / 'model.json'}: saved model: {exc}") from None
        if not issubclass(klass, cls):
            raise ConfigError(
                f"{directory / 'model.json'} holds a {name!r} model, not a {cls.__name__}"
            )
        return klass


class FactorRecommender(Recommender):
    """A model whose scores are ``user_vector . item_vector`` (ALS, BPR, two-tower, content).

    The serving engine uses ``item_vectors`` with an ANN index and ``user_vectors`` per request.
    Models that learn one factor row per training user (ALS, BPR) keep it in ``user_factors``
    and implement ``fold_in_vectors``; the inherited ``user_vectors`` combines the two. Models
    whose user vector is computed another way override ``user_vectors`` instead.
    """

    user_factors: np.ndarray

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """``(n_items, d)`` float32 item vectors."""

    def fold_in_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """``(n, d)`` vectors of users the model never saw, from their histories alone."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement fold_in_vectors or override user_vectors"
        )

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """``(n, d)`` float32 user vectors: learned for known users, folded in for the rest.

        A known user is a training index ``0 <= users[r] < len(user_factors)``; their learned
        row is used whatever history comes with it. When every row is a known user the
        histories are not even looked at (the serving hot path asks for one known user per
        request).
        """
        factors = self.user_factors
        known = known_rows(users, histories.shape[0], len(factors))
        if len(known) and known.all():
            rows = np.asarray(users, dtype=np.int64)
            return np.asarray(factors)[rows].astype(np.float32, copy=False)
        h = as_histories(histories, self.n_items)
        out = np.empty((h.shape[0], np.asarray(self.item_vectors()).shape[1]), dtype=np.float32)
        if known.any():
            out[known] = factors[np.asarray(users, dtype=np.int64)[known]]
        if not known.all():
            out[~known] = self.fold_in_vectors(h[~known])
        return out

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        return self.user_vectors(as_histories(histories, self.n_items), None)

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return self.score_vectors(self.user_vectors(histories, users))

    def score_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Scores of every item for user ``vectors`` (as ``score`` gives them)."""
        return vectors @ np.asarray(self.item_vectors()).T

    def score_moments(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per user vector, the sum and the sum of squares of its scores over all items, in
        float64 from the item vectors' sum and Gram matrix (kept while the vectors are the
        same array): O(f^2) per user instead of a pass over the catalogue."""
        items = self.item_vectors()
        kept = self.__dict__.get("_item_moments")
        if kept is None or kept[0] is not items:
            v = np.asarray(items, dtype=np.float64)
            kept = (items, v.sum(axis=0), v.T @ v)
            self.__dict__["_item_moments"] = kept
        _, total, gram = kept
        u = np.asarray(vectors, dtype=np.float64)
        return u @ total, np.einsum("ij,jk,ik->i", u, gram, u)

    def similarity_vectors(self) -> np.ndarray:
        """Item vectors whose cosines say how alike two items are: ``item_vectors`` unless a
        model's vectors carry a popularity column, which says nothing about likeness."""
        return self.item_vectors()

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        v = np.asarray(self.similarity_vectors(), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        return (v[items] / norms[items, None]) @ (v / norms[:, None]).T


def known_rows(users: np.ndarray | None, n_rows: int, n_users: int) -> np.ndarray:
    """Boolean per row: has a training index with learned factors.

    >>> known_rows(np.array([0, -1, 5]), 3, 5).tolist()
    [True, False, False]
    """
    if users is None:
        return np.zeros(n_rows, dtype=bool)
    u = np.asarray(users, dtype=np.int64)
    return (u >= 0) & (u < n_users)


def masked_top(
    scores: np.ndarray,
    h: sp.csr_matrix,
    k: int,
    *,
    exclude_seen: bool,
    exclude: sp.csr_matrix | None,
    mask: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``top_k`` of dense ``scores`` (changed in place) without the rows' history items (when
    ``exclude_seen``), ``exclude``'s items and the items ``mask`` (1-D or per row) leaves out.

    >>> masked_top(np.array([[3.0, 2.0, 1.0, 0.0]], np.float32), sp.csr_matrix([[1, 0, 0, 0]]),
    ...     2, exclude_seen=True, exclude=None, mask=np.array([True, True, False, True]))[0]
    array([[1, 3]])
    """
    if exclude_seen:
        _mask_sparse(scores, h)
    if exclude is not None:
        _mask_sparse(scores, exclude)
    if mask is not None:
        scores += exclusion(mask)
    return top_k(scores, k)


def _mask_sparse(scores: np.ndarray, mask: sp.csr_matrix) -> None:
    """Set ``scores[r, c] = -inf`` wherever ``mask`` has an entry."""
    rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
    scores[rows, mask.indices] = -np.inf
