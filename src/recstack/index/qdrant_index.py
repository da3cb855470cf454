"""Inner-product search in Qdrant: a vector database shared by every replica, with payload filters.

FAISS keeps a graph per process; a team running many API replicas may prefer one Qdrant
server holding the item vectors once, and filtering by item metadata (genre, year) inside the
search. ``location`` chooses where the collection lives: ``":memory:"`` (in-process local
mode, nothing to start), a directory (local mode persisted on disk) or an ``http(s)://`` URL
(a Qdrant server). The point id of each vector is its position, so answers come back in the
same ``(idx, scores)`` shape as every ``VectorIndex``.

A position mask becomes a ``HasId`` filter (the allowed ids, or the excluded ones when fewer)
and a payload filter (``search_where``) a Qdrant ``Filter``; Qdrant plans filtered searches
itself, and any row that still comes back short while enough items are allowed is asked
again with ``exact=True``, so a filter never shortens the list. Local mode searches exactly
(it has no HNSW graph); a server uses its HNSW graph with the same M / ef settings as FAISS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from recstack.errors import require
from recstack.index.base import as_mask, as_vectors, empty_result, read_manifest, write_manifest
from recstack.index.faiss_index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
from recstack.index.payload_filter import qdrant_filter

UPLOAD_BATCH = 2_048  # points per upsert request
SEARCH_BATCH = 256  # queries per batched search request
MEMORY = ":memory:"


def _qdrant() -> tuple[Any, Any]:
    """``(QdrantClient, models)``, imported on first use (extra ``qdrant``)."""
    client = require("qdrant_client", "qdrant")
    return client.QdrantClient, require("qdrant_client.models", "qdrant")


def connect(location: str) -> Any:
    """A Qdrant client for ``":memory:"``, a local directory or a server URL."""
    client_cls, _ = _qdrant()
    if location == MEMORY:
        return client_cls(location=MEMORY)
    if location.startswith(("http://", "https://")):
        return client_cls(url=location)
    return client_cls(path=str(location))


def content_name(vectors: np.ndarray) -> str:
    """A collection name derived from the vectors' bytes, so replicas serving the same model
    share one collection (and the second replica finds it built)."""
    digest = hashlib.sha1(np.ascontiguousarray(vectors).tobytes()).hexdigest()[:16]
    return f"recstack-{vectors.shape[0]}x{vectors.shape[1]}-{digest}"


class QdrantIndex:
    """Item vectors as points of a Qdrant collection (dot-product distance).

    Args:
        location: ``":memory:"``, a directory, or a server URL.
        collection: collection name; by default derived from the vectors' content.
        M, ef_construction, ef_search: HNSW settings of the collection (server mode).
        client: an open ``QdrantClient`` to use instead of connecting to ``location``.
    """

    kind = "qdrant"

    def __init__(
        self,
        location: str = MEMORY,
        *,
        collection: str | None = None,
        M: int = HNSW_M,  # noqa: N803 - the HNSW literature's name
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        client: Any = None,
    ) -> None:
        self.location = str(location)
        self.collection = collection
        self._content_named = collection is None  # named after the vectors of each build
        self.M, self.ef_construction, self.ef_search = int(M), int(ef_construction), int(ef_search)
        self.dim: int | None = None
        self._size = 0
        self._client = client

    @property
    def server(self) -> bool:
        """Whether the collection lives on a Qdrant server (not in local mode)."""
        return self.location.startswith(("http://", "https://"))

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.location)
        return self._client

    def close(self) -> None:
        """Release the client (a local directory is locked while a client holds it)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- writing ----------------------------------------------------------------------------
    def build(
        self, vectors: np.ndarray, payloads: Sequence[Mapping[str, Any] | None] | None = None
    ) -> Self:
        """Index ``vectors`` (and optional per-item ``payloads`` for ``search_where``).

        A content-named collection that already holds these vectors is reused as it is.
        """
        _, models = _qdrant()
        v = as_vectors(vectors)
        if payloads is not None and len(payloads) != len(v):
            raise ValueError(f"{len(payloads)} payloads for {len(v)} vectors")
        reuse = self._content_named
        if reuse:
            self.collection = content_name(v)
        self.dim = v.shape[1]
        client = self.client
        if client.collection_exists(self.collection):
            if reuse and payloads is None and self._count() == len(v):
                self._size = len(v)
                return self
            client.delete_collection(self.collection)
        client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.DOT),
            hnsw_config=models.HnswConfigDiff(m=self.M, ef_construct=self.ef_construction),
        )
        self._size = 0
        self._upload(v, payloads)
        self._index_payload_fields(payloads)
        return self

    def add(
        self, vectors: np.ndarray, payloads: Sequence[Mapping[str, Any] | None] | None = None
    ) -> None:
        """Insert ``vectors``; they take positions ``len(self)`` onwards."""
        if self.collection is None or self.dim is None:
            self.build(vectors, payloads)
            return
        self._upload(as_vectors(vectors, self.dim), payloads)

    def _upload(self, v: np.ndarray, payloads: Sequence[Mapping[str, Any] | None] | None) -> None:
        _, models = _qdrant()
        start = self._size
        for lo in range(0, len(v), UPLOAD_BATCH):
            hi = min(len(v), lo + UPLOAD_BATCH)
            batch = models.Batch(
                ids=list(range(start + lo, start + hi)),
                vectors=v[lo:hi].tolist(),
                payloads=None if payloads is None else [dict(p or {}) for p in payloads[lo:hi]],
            )
            self.client.upsert(self.collection, points=batch, wait=True)
        self._size = start + len(v)

    def _index_payload_fields(self, payloads: Sequence[Mapping[str, Any] | None] | None) -> None:
        """Payload indexes for filtered fields (a server uses them to plan filtered search)."""
        if not payloads or not self.server:
            return
        _, models = _qdrant()
        kinds: dict[str, Any] = {}
        for payload in payloads:
            for field, value in (payload or {}).items():
                first = value[0] if isinstance(value, list | tuple) and value else value
                if isinstance(first, bool):
                    kinds.setdefault(field, models.PayloadSchemaType.BOOL)
                elif isinstance(first, int):
                    kinds.setdefault(field, models.PayloadSchemaType.INTEGER)
                elif isinstance(first, float):
                    kinds.setdefault(field, models.PayloadSchemaType.FLOAT)
                elif isinstance(first, str):
                    kinds.setdefault(field, models.PayloadSchemaType.KEYWORD)
        for field, schema in kinds.items():
            self.client.create_payload_index(self.collection, field, field_schema=schema)

    def _count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def __len__(self) -> int:
        return self._size

    # ---- searching --------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products: exactly ``min(k, allowed)`` results per row."""
        q = as_vectors(np.atleast_2d(queries), self.dim)
        n = len(self)
        allowed = as_mask(mask, n)
        if k <= 0:
            return empty_result(len(q), 0)
        eligible = n if allowed is None else int(np.count_nonzero(allowed))
        if n == 0 or len(q) == 0 or eligible == 0:
            return empty_result(len(q), k)
        return self._query(q, k, self._mask_filter(allowed, eligible), min(k, eligible))

    def search_where(
        self, queries: np.ndarray, k: int, where: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` among items whose payload satisfies ``where`` (see ``payload_filter``)."""
        _, models = _qdrant()
        q = as_vectors(np.atleast_2d(queries), self.dim)
        if k <= 0:
            return empty_result(len(q), 0)
        if len(self) == 0 or len(q) == 0:
            return empty_result(len(q), k)
        flt = qdrant_filter(where, models)

        def eligible() -> int:  # counted only when some row came back short
            return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

        return self._query(q, k, flt, eligible)

    def _mask_filter(self, allowed: np.ndarray | None, eligible: int) -> Any:
        if allowed is None or eligible == len(allowed):
            return None
        _, models = _qdrant()
        if eligible <= len(allowed) // 2:
            return models.Filter(
                must=[models.HasIdCondition(has_id=np.flatnonzero(allowed).tolist())]
            )
        excluded = np.flatnonzero(~allowed).tolist()
        return models.Filter(must_not=[models.HasIdCondition(has_id=excluded)])

    def _query(
        self, q: np.ndarray, k: int, flt: Any, want: int | Callable[[], int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search every row; rows shorter than ``min(k, allowed)`` are asked again exactly."""
        idx, val = empty_result(len(q), k)
        if want == 0:
            return idx, val
        self._fill(q, k, flt, idx, val, np.arange(len(q)), exact=False)
        found = np.count_nonzero(idx >= 0, axis=1)
        if (found < k).any():
            short = np.flatnonzero(found < min(k, want if isinstance(want, int) else want()))
            if len(short):
                self._fill(q, k, flt, idx, val, short, exact=True)
        return idx, val

    def _fill(
        self,
        q: np.ndarray,
        k: int,
        flt: Any,
        idx: np.ndarray,
        val: np.ndarray,
        rows: np.ndarray,
        *,
        exact: bool,
    ) -> None:
        _, models = _qdrant()
        params = None  # local mode always searches exactly and warns about search params
        if self.server:
            params = models.SearchParams(hnsw_ef=max(self.ef_search, k), exact=exact)
        for lo in range(0, len(rows), SEARCH_BATCH):
            chunk = rows[lo : lo + SEARCH_BATCH]
            requests = [
                models.QueryRequest(query=q[r].tolist(), filter=flt, params=params, limit=k)
                for r in chunk
            ]
            answers = self.client.query_batch_points(self.collection, requests=requests)
            for r, answer in zip(chunk, answers, strict=True):
                points = answer.points[:k]
                idx[r] = -1
                val[r] = -np.inf
                idx[r, : len(points)] = [int(p.id) for p in points]
                val[r, : len(points)] = [p.score for p in points]

    # ---- persistence ------------------------------------------------------------------------
    def points(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Every stored vector and payload, in position order."""
        vectors = np.zeros((len(self), self.dim or 0), dtype=np.float32)
        payloads: list[dict[str, Any]] = [{} for _ in range(len(self))]
        for lo in range(0, len(self), UPLOAD_BATCH):
            ids = list(range(lo, min(len(self), lo + UPLOAD_BATCH)))
            for p in self.client.retrieve(
                self.collection, ids=ids, with_vectors=True, with_payload=True
            ):
                vectors[int(p.id)] = p.vector
                payloads[int(p.id)] = dict(p.payload or {})
        return vectors, payloads

    def save(self, directory: Path | str) -> Path:
        """Write a manifest naming the collection, and a copy of its points so that an
        in-memory index, or a server that lost the collection, can be rebuilt on load."""
        d = Path(directory)
        write_manifest(
            d,
            self.kind,
            dim=self.dim,
            size=len(self),
            location=self.location,
            collection=self.collection,
            M=self.M,
            ef_construction=self.ef_construction,
            ef_search=self.ef_search,
        )
        vectors, payloads = self.points()
        np.save(d / "vectors.npy", vectors)
        (d / "payloads.json").write_text(json.dumps(payloads))
        return d

    @classmethod
    def load(
        cls, directory: Path | str, mmap: bool = True, location: str | None = None
    ) -> QdrantIndex:
        """Reconnect to the saved collection (``location`` overrides the saved one); rebuild
        it from the saved points when it is missing or holds a different number of points."""
        d = Path(directory)
        m = read_manifest(d)
        index = cls(
            location or str(m["location"]),
            collection=str(m["collection"]) if m.get("collection") else None,
            M=int(m["M"]),
            ef_construction=int(m["ef_construction"]),
            ef_search=int(m["ef_search"]),
        )
        size = int(m["size"])
        index.dim = None if m["dim"] is None else int(m["dim"])
        if index.collection is None:
            return index
        if index.location != MEMORY and index.client.collection_exists(index.collection):
            if index._count() == size:
                index._size = size
                return index
        vectors = np.load(d / "vectors.npy", mmap_mode="r" if mmap else None)
        payloads = json.loads((d / "payloads.json").read_text())
        has_payload = any(payloads)
        return index.build(np.asarray(vectors), payloads if has_payload else None)
