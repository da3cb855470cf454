"""The filter language of recommendation requests, compiled to a boolean item mask.

A filter is a JSON object; every key is a condition and all must hold::

    {"genres": {"in": ["Action", "Comedy"]}}   # attribute value, or any list element, in the list
    {"genres": "Action"}                        # equality (a list means "in")
    {"duration": {"gte": 10, "lte": 60}}        # numeric range: gt, gte, lt, lte
    {"difficulty": {"nin": [2]}}                # not in (also "ne")
    {"active": true}                            # default; false = inactive only, null = both
    {"item_id": {"nin": ["i1", "i2"]}}          # by id: in / nin / eq / ne

Attribute names must be ones the catalogue has seen, so a typo is a 422 naming it rather than
an empty list. Compiled masks are remembered per catalogue (``filter_mask``): most traffic
repeats a handful of filters, and compiling one costs far more than copying its mask.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from recstack.errors import InvalidRequestError
from recstack.serving.engine.catalogue import Catalogue, value_key

SET_OPS = ("in", "nin", "eq", "ne")
RANGE_OPS = ("gt", "gte", "lt", "lte")


def parse_filter(text: str | None) -> dict[str, Any] | None:
    """The GET form of a filter: URL-decoded JSON text -> dict (422 if it is not an object).

    ``NaN`` and ``Infinity`` are refused, as in a JSON body: they are not JSON, and a mask's
    cache key would write NaN as null.

    >>> parse_filter('{"year": {"gte": NaN}}')
    Traceback (most recent call last):
    recstack.errors.InvalidRequestError: filter is not valid JSON: NaN is not a JSON number
    """
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_not_a_number)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"filter is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from None
    except _NotANumber as exc:
        raise InvalidRequestError(
            f"filter is not valid JSON: {exc.args[0]} is not a JSON number"
        ) from None
    if value is not None and not isinstance(value, dict):
        raise InvalidRequestError(
            'filter must be a JSON object, e.g. {"genres": {"in": ["Action"]}}'
        )
    return value


class _NotANumber(ValueError):
    pass


def _not_a_number(name: str) -> Any:
    raise _NotANumber(name)


def canonical_filter(spec: dict[str, Any] | None) -> str:
    """A stable text form of a filter (for cache keys)."""
    return json.dumps(spec or {}, sort_keys=True, separators=(",", ":"), default=str)


def filter_mask(spec: dict[str, Any] | None, catalogue: Catalogue) -> np.ndarray:
    """``compile_filter`` through the catalogue's mask cache; the caller owns the returned copy.

    Invalid filters raise every time (only valid masks are cached). Filters holding values JSON
    cannot express (only possible from Python callers) are compiled without the cache.
    """
    try:
        key = orjson.dumps(spec or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: a value JSON cannot hold
        return compile_filter(spec, catalogue)
    mask = catalogue.masks.get(key)
    if mask is None:
        mask = compile_filter(spec, catalogue)
        catalogue.masks.put(key, mask)
    return mask.copy()


def compile_filter(spec: dict[str, Any] | None, catalogue: Catalogue) -> np.ndarray:
    """Boolean mask over the catalogue of the items ``spec`` allows (active items by default)."""
    spec = dict(spec or {})
    n = catalogue.n_items
    active = spec.pop("active", True)
    if active is None:
        mask = np.ones(n, dtype=bool)
    elif isinstance(active, bool):
        mask = catalogue.active.copy() if active else ~catalogue.active
    else:
        raise InvalidRequestError("filter 'active' must be true, false or null")
    for name, condition in spec.items():
        if name == "item_id":
            mask &= _id_mask(condition, catalogue)
            continue
        column = catalogue.attributes.get(name)
        if column is None:
            known = ", ".join(sorted(catalogue.attributes)) or "none"
            raise InvalidRequestError(
                f"unknown filter attribute {name!r}; known attributes: {known}"
            )
        mask &= _attribute_mask(name, condition, column, n)
    return mask


def _attribute_mask(name: str, condition: Any, column: Any, n: int) -> np.ndarray:
    if not isinstance(condition, dict):
        values = condition if isinstance(condition, list) else [condition]
        return column.items_with(_keys(name, values), n)
    if not condition:
        raise InvalidRequestError(f"filter on {name!r} has no operator; use one of {_ops()}")
    mask = np.ones(n, dtype=bool)
    for op, operand in condition.items():
        if op in ("in", "nin"):
            if not isinstance(operand, list):
                raise InvalidRequestError(f"filter {name}.{op} needs a list of values")
            hit = column.items_with(_keys(name, operand), n)
            mask &= hit if op == "in" else ~hit
        elif op in ("eq", "ne"):
            hit = column.items_with(_keys(name, [operand]), n)
            mask &= hit if op == "eq" else ~hit
        elif op in RANGE_OPS:
            if isinstance(operand, bool) or not isinstance(operand, int | float):
                raise InvalidRequestError(f"filter {name}.{op} needs a number, got {operand!r}")
            if column.numbers is None:
                raise InvalidRequestError(f"attribute {name!r} has no numeric values to compare")
            with np.errstate(invalid="ignore"):
                numbers = column.numbers
                mask &= {
                    "gt": numbers > operand,
                    "gte": numbers >= operand,
                    "lt": numbers < operand,
                    "lte": numbers <= operand,
                }[op]
        else:
            raise InvalidRequestError(
                f"unknown filter operator {op!r} on {name!r}; use one of {_ops()}"
            )
    return mask


def _id_mask(condition: Any, catalogue: Catalogue) -> np.ndarray:
    if not isinstance(condition, dict):
        condition = {"in": condition if isinstance(condition, list) else [condition]}
    mask = np.ones(catalogue.n_items, dtype=bool)
    for op, operand in condition.items():
        if op not in SET_OPS:
            raise InvalidRequestError(f"filter item_id supports {', '.join(SET_OPS)}, not {op!r}")
        values = operand if isinstance(operand, list) else [operand]
        rows = catalogue.positions_of(values)
        hit = np.zeros(catalogue.n_items, dtype=bool)
        hit[rows[rows >= 0]] = True
        mask &= hit if op in ("in", "eq") else ~hit
    return mask


def _keys(name: str, values: list[Any]) -> list[str]:
    keys = []
    for value in values:
        if isinstance(value, dict | list):
            raise InvalidRequestError(
                f"filter values for {name!r} must be strings, numbers or booleans"
            )
        key = value_key(value)
        if key is not None:
            keys.append(key)
    return keys


def _ops() -> str:
    return ", ".join(SET_OPS + RANGE_OPS)
