"""Payload filters: one small condition language for "genre is Comedy and year from 1990".

A filter is a mapping from a payload field to a condition:

* a scalar (``"Comedy"``, ``1995``, ``True``): the field equals it, or — when the field holds a
  list (a film's genres) — the list contains it;
* a list (``["Comedy", "Drama"]``): any of them (same list rule);
* a range ``{"gte": 1990, "lt": 2000}`` with keys among ``gt``, ``gte``, ``lt``, ``lte``.

All conditions must hold. ``where_mask`` evaluates a filter over the items' payloads in
numpy (what exact and FAISS search use as their mask); ``qdrant_filter`` states the same
filter as a Qdrant payload filter, so both backends answer the same question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

RANGE_KEYS = frozenset({"gt", "gte", "lt", "lte"})


def check_where(where: Mapping[str, Any]) -> None:
    """Reject a malformed filter with a message naming the field (ValueError)."""
    for field, cond in where.items():
        if not isinstance(field, str) or not field:
            raise ValueError(f"filter field names must be non-empty text, got {field!r}")
        if isinstance(cond, Mapping):
            unknown = set(cond) - RANGE_KEYS
            if unknown or not cond:
                raise ValueError(
                    f"filter on {field!r}: a range takes keys {sorted(RANGE_KEYS)}, "
                    f"got {sorted(map(str, cond))}"
                )
            for key, bound in cond.items():
                if isinstance(bound, bool) or not isinstance(bound, int | float):
                    raise ValueError(f"filter on {field!r}: {key} bound must be a number")
        elif isinstance(cond, list | tuple):
            if not cond:
                raise ValueError(f"filter on {field!r}: an empty list matches nothing")
            if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in cond):
                raise ValueError(f"filter on {field!r}: list entries must be text or integers")
        elif not isinstance(cond, str | int | float | bool):
            raise ValueError(f"filter on {field!r}: unsupported condition {cond!r}")


def _matches(value: Any, cond: Any) -> bool:
    values = value if isinstance(value, list | tuple) else [value]
    if isinstance(cond, Mapping):
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return any(
            all(
                (key != "gt" or v > b)
                and (key != "gte" or v >= b)
                and (key != "lt" or v < b)
                and (key != "lte" or v <= b)
                for key, b in cond.items()
            )
            for v in numbers
        )
    wanted = list(cond) if isinstance(cond, list | tuple) else [cond]
    return any(v in wanted for v in values if v is not None)


def where_mask(
    payloads: Sequence[Mapping[str, Any] | None], where: Mapping[str, Any]
) -> np.ndarray:
    """Boolean mask: which payloads satisfy every condition of ``where``.

    >>> films = [{"genre": ["Comedy", "Drama"], "year": 1994},
    ...          {"genre": ["Horror"], "year": 1999},
    ...          {"genre": ["Comedy"], "year": 1985},
    ...          None]
    >>> where_mask(films, {"genre": "Comedy", "year": {"gte": 1990}}).tolist()
    [True, False, False, False]
    >>> where_mask(films, {"genre": ["Horror", "Drama"]}).tolist()
    [True, True, False, False]
    """
    check_where(where)
    out = np.ones(len(payloads), dtype=bool)
    for i, payload in enumerate(payloads):
        payload = payload or {}
        out[i] = all(
            field in payload and _matches(payload[field], cond) for field, cond in where.items()
        )
    return out


def qdrant_filter(where: Mapping[str, Any], models: Any) -> Any:
    """The Qdrant ``Filter`` (from ``qdrant_client.models``) equivalent to ``where``."""
    check_where(where)
    must = []
    for field, cond in where.items():
        if isinstance(cond, Mapping):
            must.append(models.FieldCondition(key=field, range=models.Range(**dict(cond))))
        elif isinstance(cond, list | tuple):
            must.append(models.FieldCondition(key=field, match=models.MatchAny(any=list(cond))))
        elif isinstance(cond, float):  # Qdrant matches keywords, integers and booleans only
            must.append(models.FieldCondition(key=field, range=models.Range(gte=cond, lte=cond)))
        else:
            must.append(models.FieldCondition(key=field, match=models.MatchValue(value=cond)))
    return models.Filter(must=must)
