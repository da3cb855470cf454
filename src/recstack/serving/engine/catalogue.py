"""The item catalogue as the server keeps it: ids, titles, active flags and attribute columns.

Attributes are stored column-wise so filters build item masks with numpy, never per item in
Python: every value of an attribute (or element of a list attribute) maps to the sorted array
of item indices that carry it (a sparse membership column per value), and attributes with
numbers also keep a float column (NaN where absent) for range filters. A catalogue is never
mutated: ``with_item`` (one item) and ``with_items`` (a batch) return a new one, so readers
holding the old one stay consistent.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recstack.data.idmap import IdMap


def value_key(value: Any) -> str | None:
    """Canonical key of one attribute value: numbers compare equal across int/float.

    >>> value_key(3), value_key(3.0), value_key("3"), value_key(True), value_key(None)
    ('n:3.0', 'n:3.0', 's:3', 'b:1', None)
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return f"b:{int(value)}"
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return None if np.isnan(number) else f"n:{number!r}"
    return f"s:{value}"


def numeric_value(value: Any) -> float:
    """The number an attribute holds for range filters, NaN if it is not a number."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        return float("nan")
    return float(value)


def positions_of(ids: IdMap) -> dict[str, int]:
    """External id -> index of an IdMap, as a plain dict."""
    return dict(zip(ids.ids.tolist(), range(len(ids)), strict=True))


def _elements(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


@dataclass(frozen=True)
class AttributeColumn:
    """One attribute: value key -> sorted item indices, plus a numeric column if any."""

    members: dict[str, np.ndarray]
    numbers: np.ndarray | None

    def items_with(self, keys: Iterable[str], n_items: int) -> np.ndarray:
        """Boolean mask of items carrying any of ``keys``."""
        mask = np.zeros(n_items, dtype=bool)
        for key in keys:
            rows = self.members.get(key)
            if rows is not None:
                mask[rows] = True
        return mask


class MaskCache:
    """The most recently used compiled filter masks of one catalogue, by the filter's JSON.

    Masks are stored read-only (callers copy before editing), so concurrent requests share
    them safely. A catalogue change builds a new ``Catalogue`` and with it an empty cache, so a
    mask can never outlive the items it was compiled for.
    """

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._masks: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> np.ndarray | None:
        with self._lock:
            mask = self._masks.get(key)
            if mask is not None:
                self._masks.move_to_end(key)
            return mask

    def put(self, key: bytes, mask: np.ndarray) -> None:
        mask.flags.writeable = False
        with self._lock:
            self._masks[key] = mask
            self._masks.move_to_end(key)
            while len(self._masks) > self.size:
                self._masks.popitem(last=False)

    def __len__(self) -> int:
        return len(self._masks)


@dataclass(frozen=True)
class Catalogue:
    """Items the server can return, in the engine's index order.

    Attributes:
        ids: external item id <-> engine index.
        titles: object array of titles (None when absent).
        active: boolean array; inactive items are only returned when a filter asks.
        attributes: attribute name -> column.
        raw: the attribute dict of each item (used to update an item's columns).
        positions: external id -> index as a dict (a lookup per request must cost
            nanoseconds, not the microseconds of a pandas index).
        masks: compiled filter masks of this catalogue (see ``filters.filter_mask``).
    """

    ids: IdMap
    titles: np.ndarray
    active: np.ndarray
    attributes: dict[str, AttributeColumn]
    raw: tuple[dict[str, Any], ...]
    positions: dict[str, int]
    masks: MaskCache = field(default_factory=MaskCache, compare=False, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def position(self, item_id: str) -> int:
        """Index of an item, -1 if it is not in the catalogue."""
        return self.positions.get(item_id, -1)

    def positions_of(self, item_ids: list[str] | tuple[str, ...]) -> np.ndarray:
        """Indices (int64) of several items, -1 for unknown ones (dict lookups, no pandas)."""
        get = self.positions.get
        return np.fromiter((get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids))

    @classmethod
    def build(
        cls,
        ids: IdMap,
        titles: Sequence[str | None],
        attributes: Sequence[dict[str, Any] | None],
        active: Sequence[bool],
    ) -> Catalogue:
        """A catalogue from per-item sequences aligned with ``ids``."""
        raw = tuple(dict(a) if isinstance(a, dict) else {} for a in attributes)
        members: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        numeric: dict[str, dict[int, float]] = defaultdict(dict)
        keys: dict[tuple[type, Any], str | None] = {}  # values repeat: key each distinct one once
        for index, attrs in enumerate(raw):
            for name, value in attrs.items():
                column = members[name]
                kind = value.__class__
                for element in value if kind is list or kind is tuple else (value,):
                    try:
                        memo = (element.__class__, element)
                        key = (
                            keys[memo]
                            if memo in keys
                            else keys.setdefault(memo, value_key(element))
                        )
                    except TypeError:  # an unhashable value (a nested list or dict)
                        key = value_key(element)
                    if key is not None:
                        column[key].append(index)
                if kind is int or kind is float:
                    number = float(value)
                elif kind is str or kind is list or kind is bool or value is None:
                    continue  # not a number: no range filter on it
                else:
                    number = numeric_value(value)
                if number == number:  # not NaN
                    numeric[name][index] = number
        n = len(ids)
        columns: dict[str, AttributeColumn] = {}
        for name, values in members.items():
            numbers = None
            if name in numeric:
                numbers = np.full(n, np.nan)
                numbers[list(numeric[name])] = list(numeric[name].values())
            columns[name] = AttributeColumn(
                {key: np.asarray(rows, dtype=np.int64) for key, rows in values.items()}, numbers
            )
        return cls(
            ids=ids,
            titles=np.asarray(list(titles), dtype=object),
            active=np.asarray(active, dtype=bool),
            attributes=columns,
            raw=raw,
            positions=positions_of(ids),
        )

    def title(self, index: int) -> str | None:
        value = self.titles[index]
        return None if value is None else str(value)

    def with_item(
        self, item_id: str, *, title: str | None, attributes: dict[str, Any], active: bool
    ) -> tuple[Catalogue, int, bool]:
        """A catalogue with one item added or replaced: ``(catalogue, index, is_new)``.

        Cost is O(n_items) array copies plus O(values of the touched attributes), so an item
        upsert never rebuilds the whole attribute index.
        """
        index = self.position(item_id)
        is_new = index < 0
        ids, titles, act, positions = self.ids, self.titles, self.active, self.positions
        if is_new:
            ids = self.ids.extend([item_id])
            index = len(ids) - 1
            positions = {**positions, str(item_id): index}
            titles = np.append(titles, np.asarray([title], dtype=object))
            act = np.append(act, bool(active))
            raw = (*self.raw, dict(attributes))
        else:
            titles = titles.copy()
            titles[index] = title
            act = act.copy()
            act[index] = bool(active)
            raw = tuple(dict(attributes) if i == index else a for i, a in enumerate(self.raw))
        n = len(ids)
        old = {} if is_new else self.raw[index]
        columns = dict(self.attributes)
        for name in set(old) | set(attributes):
            columns[name] = _updated_column(
                columns.get(name), index, n, old.get(name), attributes.get(name)
            )
            if not columns[name].members and columns[name].numbers is None:
                del columns[name]
        for name, column in columns.items():
            if column.numbers is not None and len(column.numbers) < n:
                grown = np.full(n, np.nan)
                grown[: len(column.numbers)] = column.numbers
                columns[name] = replace(column, numbers=grown)
        catalogue = Catalogue(
            ids=ids, titles=titles, active=act, attributes=columns, raw=raw, positions=positions
        )
        return catalogue, index, is_new

    def with_items(
        self, items: Sequence[tuple[str, str | None, dict[str, Any], bool]]
    ) -> tuple[Catalogue, list[int], list[bool]]:
        """A catalogue with many ``(item_id, title, attributes, active)`` added or replaced
        (a repeated id: the later entry); returns it with each distinct id's index and
        whether it is new, in first-seen order.

        One copy of the arrays and one update per touched attribute value for the whole batch,
        where ``with_item`` per item would copy the catalogue once per item: loading a
        10,000-item catalogue through the API is one catalogue build, not 10,000.
        """
        latest: dict[str, tuple[str | None, dict[str, Any], bool]] = {}
        for item_id, title, attributes, active in items:
            latest[str(item_id)] = (title, dict(attributes), bool(active))
        new_ids = [item_id for item_id in latest if item_id not in self.positions]
        n_old = self.n_items
        ids, positions = self.ids, self.positions
        if new_ids:
            ids = ids.extend(new_ids)
            positions = {**positions, **{i: n_old + k for k, i in enumerate(new_ids)}}
        n = len(ids)
        titles = np.empty(n, dtype=object)
        titles[:n_old] = self.titles
        active = np.zeros(n, dtype=bool)
        active[:n_old] = self.active
        raw = [*self.raw, *({} for _ in new_ids)]
        added: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        removed: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        numbers: dict[str, dict[int, float]] = defaultdict(dict)
        indices: list[int] = []
        for item_id, (title, attributes, act) in latest.items():
            index = positions[item_id]
            indices.append(index)
            old = raw[index]
            titles[index], active[index], raw[index] = title, act, attributes
            for name in set(old) | set(attributes):
                before, after = _value_keys(old.get(name)), _value_keys(attributes.get(name))
                for key in before - after:
                    removed[name][key].append(index)
                for key in after - before:
                    added[name][key].append(index)
                value = attributes.get(name)
                numbers[name][index] = numeric_value(value) if value is not None else np.nan
        columns = dict(self.attributes)
        for name in numbers:
            column = _batch_column(
                columns.get(name), n, removed.get(name, {}), added.get(name, {}), numbers[name]
            )
            if column.members or column.numbers is not None:
                columns[name] = column
            else:
                columns.pop(name, None)
        for name, column in columns.items():
            if column.numbers is not None and len(column.numbers) < n:
                grown = np.full(n, np.nan)
                grown[: len(column.numbers)] = column.numbers
                columns[name] = replace(column, numbers=grown)
        catalogue = Catalogue(
            ids=ids,
            titles=titles,
            active=active,
            attributes=columns,
            raw=tuple(raw),
            positions=positions,
        )
        return catalogue, indices, [index >= n_old for index in indices]


def _value_keys(value: Any) -> set[str]:
    """The membership keys of one attribute value (each element of a list)."""
    if value is None:
        return set()
    return {key for key in map(value_key, _elements(value)) if key is not None}


def _batch_column(
    column: AttributeColumn | None,
    n_items: int,
    removed: dict[str, list[int]],
    added: dict[str, list[int]],
    numbers: dict[int, float],
) -> AttributeColumn:
    """``column`` with many items' values moved at once (``with_items``)."""
    members = dict(column.members) if column else {}
    for key, rows in removed.items():
        kept = np.setdiff1d(members[key], np.asarray(rows, dtype=np.int64), assume_unique=True)
        if len(kept):
            members[key] = kept
        else:
            del members[key]
    for key, rows in added.items():
        fresh = np.asarray(rows, dtype=np.int64)
        current = members.get(key)
        members[key] = np.sort(fresh) if current is None else np.union1d(current, fresh)
    values = column.numbers if column else None
    given = np.fromiter(numbers.values(), dtype=np.float64, count=len(numbers))
    if values is not None or not np.all(np.isnan(given)):
        grown = np.full(n_items, np.nan)
        if values is not None:
            grown[: len(values)] = values
        grown[np.fromiter(numbers, dtype=np.int64, count=len(numbers))] = given
        values = grown if not np.all(np.isnan(grown)) else None
    return AttributeColumn(members, values)


def _updated_column(
    column: AttributeColumn | None, index: int, n_items: int, old: Any, new: Any
) -> AttributeColumn:
    """``column`` with item ``index`` moved from value ``old`` to value ``new``."""
    members = dict(column.members) if column else {}
    old_keys = (
        {k for k in map(value_key, _elements(old)) if k is not None} if old is not None else set()
    )
    new_keys = (
        {k for k in map(value_key, _elements(new)) if k is not None} if new is not None else set()
    )
    for key in old_keys - new_keys:
        rows = members[key]
        rows = rows[rows != index]
        if len(rows):
            members[key] = rows
        else:
            del members[key]
    for key in new_keys - old_keys:
        rows = members.get(key, np.empty(0, dtype=np.int64))
        members[key] = np.insert(rows, np.searchsorted(rows, index), index)
    numbers = column.numbers if column else None
    number = numeric_value(new) if new is not None else float("nan")
    if numbers is not None or not np.isnan(number):
        grown = np.full(n_items, np.nan)
        if numbers is not None:
            grown[: len(numbers)] = numbers
        grown[index] = number
        numbers = grown if not np.all(np.isnan(grown)) else None
    return AttributeColumn(members, numbers)
