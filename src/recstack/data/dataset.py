"""Dataset: a frozen snapshot of interactions that models train on.

Interactions are kept as parallel arrays (user index, item index, weight, timestamp), sorted by
user then time, so splits are array slicing. The user x item CSR matrix (duplicates summed) is
built on first use. Train and test sets from one split share the same ``IdMap``s, so indices
mean the same thing in both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions as index arrays plus the id maps and item metadata.

    Attributes:
        users, items: external id <-> index maps.
        user_idx, item_idx: int32 arrays, one entry per interaction.
        weight: float32 interaction weights (see ``EventWeighting``).
        timestamp: int64 epoch seconds.
        item_meta: optional frame aligned with ``items`` (row i is item i) with columns
            ``title``, ``text``, ``attributes`` (dict), ``active`` (bool).
    """

    users: IdMap
    items: IdMap
    user_idx: np.ndarray
    item_idx: np.ndarray
    weight: np.ndarray
    timestamp: np.ndarray
    item_meta: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.user_idx)
        for name in ("item_idx", "weight", "timestamp"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Dataset.{name} has {len(getattr(self, name))} entries, expected {n}"
                )
        if self.item_meta is not None and len(self.item_meta) != len(self.items):
            raise ValueError("Dataset.item_meta must have one row per item")

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        interactions: pd.DataFrame,
        *,
        items: pd.DataFrame | None = None,
        weighting: EventWeighting | None = None,
        users: IdMap | None = None,
        item_map: IdMap | None = None,
    ) -> Dataset:
        """Build from a frame with ``user_id``, ``item_id`` and either ``weight`` or
        ``event_type`` (+ optional ``value``), and optional ``timestamp``.

        ``items`` (columns ``item_id``, ``title``, ``text``, ``attributes``, ``active``) adds
        catalogue items that may have no interactions. Given id maps are extended, never reordered.
        """
        df = interactions
        if "weight" in df.columns:
            w = df["weight"].to_numpy(dtype=np.float32)
        else:
            value = df["value"] if "value" in df.columns else pd.Series(np.nan, index=df.index)
            w = (weighting or EventWeighting()).weights(df["event_type"], value)
        keep = ~np.isnan(w)
        df = df.loc[keep] if not keep.all() else df
        w = w[keep]
        uid = df["user_id"].astype(str)
        iid = df["item_id"].astype(str)
        umap = (users or IdMap()).extend(pd.unique(uid))
        catalogue = [] if items is None else items["item_id"].astype(str).tolist()
        imap = (item_map or IdMap()).extend(list(catalogue) + pd.unique(iid).tolist())
        ts = (
            df["timestamp"].to_numpy(dtype=np.int64)
            if "timestamp" in df.columns
            else np.zeros(len(df), dtype=np.int64)
        )
        return cls.from_arrays(
            umap,
            imap,
            umap.indices(uid.to_numpy()),
            imap.indices(iid.to_numpy()),
            w,
            ts,
            item_meta=align_item_meta(imap, items),
        )

    @classmethod
    def from_arrays(
        cls,
        users: IdMap,
        items: IdMap,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        weight: np.ndarray,
        timestamp: np.ndarray,
        item_meta: pd.DataFrame | None = None,
    ) -> Dataset:
        """Build from index arrays, sorting by (user, timestamp) as the class promises."""
        u = np.asarray(user_idx, dtype=np.int32)
        i = np.asarray(item_idx, dtype=np.int32)
        t = np.asarray(timestamp, dtype=np.int64)
        order = np.lexsort((t, u))
        return cls(
            users,
            items,
            u[order],
            i[order],
            np.asarray(weight, dtype=np.float32)[order],
            t[order],
            item_meta,
        )

    # ---- views --------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.user_idx)

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """User x item CSR (float32), repeated pairs summed."""
        m = sp.csr_matrix(
            (self.weight, (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        return m

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per item (int64)."""
        return np.diff(self.matrix.tocsc().indptr).astype(np.int64)

    @cached_property
    def fingerprint(self) -> str:
        """Short content hash of the interactions and id maps: same data, same fingerprint."""
        h = hashlib.sha256()
        for arr in (self.user_idx, self.item_idx, self.weight, self.timestamp):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update("\x1f".join(self.users.ids).encode())
        h.update("\x1e".join(self.items.ids).encode())
        return h.hexdigest()[:16]

    def subset(self, mask: np.ndarray) -> Dataset:
        """The interactions where ``mask`` is true, with the same id maps and metadata."""
        mask = np.asarray(mask, dtype=bool)
        return replace(
            self,
            user_idx=self.user_idx[mask],
            item_idx=self.item_idx[mask],
            weight=self.weight[mask],
            timestamp=self.timestamp[mask],
        )

    def stats(self) -> dict[str, Any]:
        n_u, n_i, n = self.n_users, self.n_items, self.n_interactions
        return {
            "users": n_u,
            "items": n_i,
            "interactions": n,
            "density": (self.matrix.nnz / (n_u * n_i)) if n_u and n_i else 0.0,
            "fingerprint": self.fingerprint,
        }

    def item_attribute(self, key: str) -> list[Any]:
        """One attribute per item (None where absent), e.g. ``item_attribute("genres")``."""
        if self.item_meta is None:
            return [None] * self.n_items
        return [a.get(key) if isinstance(a, dict) else None for a in self.item_meta["attributes"]]

    # ---- persistence (npy + json, no pickle) -------------------------------------------------
    def save(self, directory: Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name in ("user_idx", "item_idx", "weight", "timestamp"):
            np.save(d / f"{name}.npy", getattr(self, name))
        self.users.save(d / "users.json")
        self.items.save(d / "items.json")
        if self.item_meta is not None:
            self.item_meta.to_json(d / "item_meta.jsonl", orient="records", lines=True)
        (d / "dataset.json").write_text(json.dumps(self.stats()))
        return d

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> Dataset:
        d = Path(directory)
        mode = "r" if mmap else None
        arrays = {
            n: np.load(d / f"{n}.npy", mmap_mode=mode)
            for n in ("user_idx", "item_idx", "weight", "timestamp")
        }
        meta = None
        if (d / "item_meta.jsonl").exists():
            meta = pd.read_json(d / "item_meta.jsonl", orient="records", lines=True, dtype=False)
        return cls(
            IdMap.load(d / "users.json"), IdMap.load(d / "items.json"), item_meta=meta, **arrays
        )


def align_item_meta(items: IdMap, frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Item metadata reindexed to ``items`` order; items without metadata get empty rows."""
    if frame is None:
        return None
    f = frame.copy()
    f["item_id"] = f["item_id"].astype(str)
    f = f.drop_duplicates("item_id", keep="last").set_index("item_id").reindex(items.ids)
    out = pd.DataFrame(
        {
            "title": f["title"] if "title" in f else None,
            "text": f["text"] if "text" in f else None,
            "attributes": [
                a if isinstance(a, dict) else {}
                for a in (f["attributes"] if "attributes" in f else [None] * len(f))
            ],
            "active": f["active"].fillna(True).astype(bool) if "active" in f else True,
        }
    ).reset_index(drop=True)
    out["title"] = out["title"].astype(object).where(out["title"].notna(), None)
    out["text"] = out["text"].astype(object).where(out["text"].notna(), None)
    return out
