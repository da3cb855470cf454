"""IdMap: external ids (strings chosen by the user) <-> contiguous integer indices models use."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd


class IdMap:
    """An ordered, append-only bijection between external string ids and ``0..n-1``.

    Unknown ids are normal (a new user, a new item) and map to ``-1`` rather than raising.

    >>> m = IdMap(["a", "b", 7])
    >>> m.index("b"), m.index("zz"), m.external(2)
    (1, -1, '7')
    >>> m.indices(["7", "a", "q"]).tolist()
    [2, 0, -1]
    """

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: Iterable[object] = ()) -> None:
        arr = np.asarray([str(i) for i in ids], dtype=object)
        self._ids = arr
        self._index = pd.Index(arr)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise ValueError(f"duplicate id in IdMap: {dup!r}")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external: object) -> bool:
        return str(external) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:  # pragma: no cover - identity hashing is enough
        return id(self)

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order (object array of str)."""
        return self._ids

    def index(self, external: object) -> int:
        """Index of one external id, or -1 if unknown."""
        loc = self._index.get_indexer([str(external)])[0]
        return int(loc)

    def indices(self, externals: Iterable[object]) -> np.ndarray:
        """Indices (int64) of many external ids; unknown ones are -1."""
        values = pd.Index([str(e) for e in externals], dtype=object)
        return self._index.get_indexer(values).astype(np.int64)

    def external(self, index: int) -> str:
        return str(self._ids[index])

    def externals(self, indices: Iterable[int] | np.ndarray) -> list[str]:
        return self._ids[np.asarray(indices, dtype=np.int64)].tolist()

    def extend(self, externals: Iterable[object]) -> IdMap:
        """A new map with the unknown ids among ``externals`` appended (order kept, deduplicated).

        >>> IdMap(["a", "b"]).extend(["c", "a", 7, "c"]).to_list()
        ['a', 'b', 'c', '7']
        """
        candidates = list(dict.fromkeys(str(e) for e in externals))
        if not candidates:
            return self
        # one vectorised lookup, not a pandas membership test per id (62K items at every load)
        known = self._index.get_indexer(pd.Index(candidates, dtype=object)) >= 0
        new = [e for e, k in zip(candidates, known.tolist(), strict=True) if not k]
        if not new:
            return self
        return IdMap(np.concatenate([self._ids, np.asarray(new, dtype=object)]))

    def to_list(self) -> list[str]:
        return self._ids.tolist()

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_list()))

    @classmethod
    def load(cls, path: Path) -> IdMap:
        return cls(json.loads(Path(path).read_text()))
