"""The recommendation options: one table of fields, one parser, the OpenAPI docs of both forms.

``GET /v1/users/{id}/recommendations?k=5&filter=...`` and ``POST`` with ``{"k": 5, "filter":
{...}}`` mean the same request. Each option is declared once in ``FIELDS``; ``parse_options``
reads a query string (text, lax: ``k=5``, ``explain=true``, ``filter`` as URL-encoded JSON,
``exclude`` repeated) or a JSON body (typed, strict: no ``"5"`` for 5, unknown keys refused)
into the engine's ``RecommendationRequest``, and ``query_parameters``/``body_schema`` document
exactly what it accepts. Errors are FastAPI's 422 shape, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError

from recstack.data.validation import MAX_ID_LENGTH
from recstack.serving.engine.filters import RANGE_OPS, SET_OPS, parse_filter
from recstack.serving.engine.request import (
    MAX_EXCLUDE,
    MAX_FILTER_LENGTH,
    MAX_K,
    RecommendationRequest,
)

FILTER_DOC = (
    'Attribute filter, all conditions must hold. `{"genres": {"in": ["Action"]}}` keeps '
    'items whose attribute (or any element of a list attribute) is in the list; `{"genres": '
    '"Action"}` is equality; `{"duration": {"gte": 10, "lte": 60}}` a numeric range '
    '(gt/gte/lt/lte); `{"difficulty": {"nin": [2]}}` excludes values; `{"active": true}` '
    "(the default) keeps active items only, `false` inactive ones, `null` both; "
    '`{"item_id": {"nin": [...]}}` excludes ids. Unknown attributes are rejected (422).'
)

_INT = re.compile(r"\s*[+-]?[0-9]+\s*")
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


@dataclass(frozen=True)
class Field:
    """One option: its name, kind (int, bool, ids, json, name), default, bounds and doc."""

    name: str
    kind: str
    default: Any
    description: str
    minimum: int | None = None
    maximum: int | None = None


FIELDS: tuple[Field, ...] = (
    Field("k", "int", 10, "How many items to return.", 1, MAX_K),
    Field("exclude_seen", "bool", True, "Leave out items already in the user's history."),
    Field(
        "exclude", "ids", (), "Item ids never to return (in a query: repeat it).", 0, MAX_EXCLUDE
    ),
    Field("filter", "json", None, FILTER_DOC, 0, MAX_FILTER_LENGTH),
    Field("explain", "bool", False, "Attach the history items behind each pick."),
    Field(
        "slot",
        "name",
        None,
        "Serve from this model slot (e.g. `challenger`; admin keys only); default: the "
        "serving alias.",
        1,
        MAX_ID_LENGTH,
    ),
)
NAMES = frozenset(f.name for f in FIELDS)
FILTER = next(f for f in FIELDS if f.name == "filter")
MAX_ATTRIBUTE_LENGTH = 255  # characters of an attribute name (``schemas.ItemIn``)
DEFAULTS = RecommendationRequest()


class _Invalid(Exception):
    def __init__(self, message: str, kind: str = "value_error") -> None:
        self.message, self.kind = message, kind


def parse_options(values: Mapping[str, Any], where: str) -> RecommendationRequest:
    """``values`` (a query's ``{name: text or [texts]}`` when ``where == "query"``, a decoded
    JSON object when ``"body"``) as a request; 422 (``RequestValidationError``) naming every bad
    field. A query ignores unknown parameters; a body refuses unknown keys."""
    errors: list[dict[str, Any]] = []
    parsed: dict[str, Any] = {}
    for field in FIELDS:
        if field.name not in values:
            continue
        try:
            parsed[field.name] = _convert(field, values[field.name], where == "query")
        except _Invalid as exc:
            errors.append({"loc": (where, field.name), "msg": exc.message, "type": exc.kind})
    if where == "body":
        for name in values:
            if name not in NAMES:
                errors.append(
                    {"loc": (where, name), "msg": "Extra inputs are not permitted", "type": "extra"}
                )
    if errors:
        raise RequestValidationError(errors)
    if not parsed:
        return DEFAULTS
    return RecommendationRequest(**parsed)


def _convert(field: Field, value: Any, text: bool) -> Any:
    kind = field.kind
    if kind == "int":
        if text and isinstance(value, str) and _INT.fullmatch(value):
            value = int(value)
        if type(value) is not int:
            raise _Invalid("Input should be a valid integer", "int_type")
        if field.minimum is not None and value < field.minimum:
            raise _Invalid(f"Input should be greater than or equal to {field.minimum}")
        if field.maximum is not None and value > field.maximum:
            raise _Invalid(f"Input should be less than or equal to {field.maximum}")
        return value
    if kind == "bool":
        if text and isinstance(value, str):
            lowered = value.strip().lower()
            value = True if lowered in _TRUE else False if lowered in _FALSE else value
        if type(value) is not bool:
            raise _Invalid("Input should be a valid boolean", "bool_type")
        return value
    if kind == "ids":
        if text and isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise _Invalid("Input should be a valid list", "list_type")
        if field.maximum is not None and len(value) > field.maximum:
            raise _Invalid(f"List should have at most {field.maximum} items", "too_long")
        for item in value:
            _identifier(item)
        return tuple(value)
    if kind == "json":
        if text:
            if not isinstance(value, str):
                raise _Invalid("Input should be a valid string", "string_type")
            if field.maximum is not None and len(value) > field.maximum:
                raise _Invalid(f"String should have at most {field.maximum} characters")
            return parse_filter(value)
        if value is not None and not isinstance(value, dict):
            raise _Invalid("Input should be a valid dictionary", "dict_type")
        return value
    if value is None and not text:
        return None
    return _identifier(value)


def _identifier(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("Input should be a valid string", "string_type")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise _Invalid(f"String should have 1 to {MAX_ID_LENGTH} characters")
    return value


QUERY_MEMO_SIZE = 1024  # distinct query strings whose parsed options are kept
QUERY_MEMO_BYTES = 2048  # longer query strings (long exclude lists) are parsed every time
_query_memo: dict[bytes, RecommendationRequest] = {}


def query_options(query_string: bytes, query: Callable[[], Any]) -> RecommendationRequest:
    """``parse_options`` of a GET query, remembered by its raw text: a client's widget sends
    the same parameters with every request, and reading them (URL decoding, the filter's
    JSON) cost about a tenth of a recommendation. ``query`` returns the request's
    ``QueryParams`` and is called only for a new text. Invalid queries raise every time (only
    valid ones are kept); the oldest entry goes once ``QUERY_MEMO_SIZE`` are held.

    >>> from starlette.datastructures import QueryParams
    >>> first = query_options(b"k=5", lambda: QueryParams(b"k=5"))
    >>> first.k, query_options(b"k=5", lambda: QueryParams(b"")) is first
    (5, True)
    """
    options = _query_memo.get(query_string)
    if options is None:
        options = parse_options(query_values(query()), "query")
        if len(query_string) <= QUERY_MEMO_BYTES:
            if len(_query_memo) >= QUERY_MEMO_SIZE:
                _query_memo.pop(next(iter(_query_memo)), None)
            _query_memo[query_string] = options
    return options


def query_values(query: Any) -> dict[str, Any]:
    """A Starlette ``QueryParams`` as ``parse_options`` reads it (``exclude`` repeated)."""
    values: dict[str, Any] = {name: query[name] for name in NAMES if name in query}
    if "exclude" in values:
        values["exclude"] = query.getlist("exclude")
    return values


# ---- OpenAPI ----------------------------------------------------------------------------------
def _schema(field: Field, text: bool) -> dict[str, Any]:
    if field.kind == "int":
        schema: dict[str, Any] = {"type": "integer"}
        if field.minimum is not None:
            schema["minimum"] = field.minimum
        if field.maximum is not None:
            schema["maximum"] = field.maximum
    elif field.kind == "bool":
        schema = {"type": "boolean"}
    elif field.kind == "ids":
        item = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
        schema = {"type": "array", "items": item, "maxItems": field.maximum}
    elif field.kind == "json":
        schema = {"anyOf": [filter_schema(), {"type": "null"}]}
    else:
        schema = {"type": "string", "minLength": field.minimum, "maxLength": field.maximum}
        if not text:
            schema = {"anyOf": [schema, {"type": "null"}]}
    default = list(field.default) if isinstance(field.default, tuple) else field.default
    if default is not None:
        schema["default"] = default
    description = field.description
    if field.kind == "int" and not text:  # JSON Schema cannot tell 5.0 from 5; the parser can
        description += " A JSON integer written without a fraction (`5`, not `5.0`)."
    return {**schema, "description": description}


def filter_schema() -> dict[str, Any]:
    """The JSON schema of a filter, as exact as its grammar (``engine.filters``) allows.

    Everything the compiler refuses for its shape is outside the schema; what it refuses
    because of the data (an attribute no item has, a range on an attribute without numbers)
    is the route's documented 422.
    """
    scalar = {"anyOf": [{"type": t} for t in ("string", "number", "boolean", "null")]}
    scalars = {"type": "array", "items": scalar}
    number = {"type": "number"}
    condition = {
        "anyOf": [
            scalar,
            scalars,
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": {
                    **{op: scalars for op in ("in", "nin")},
                    **{op: scalar for op in ("eq", "ne")},
                    **{op: number for op in RANGE_OPS},
                },
            },
        ]
    }
    # ids compare as text, so any value names an id (one that matches none excludes nothing)
    id_condition = {
        "anyOf": [
            {"not": {"type": "object"}},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {op: {} for op in SET_OPS},
            },
        ]
    }
    return {
        "type": "object",
        "properties": {
            "active": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "item_id": id_condition,
        },
        "propertyNames": {"minLength": 1, "maxLength": MAX_ATTRIBUTE_LENGTH},
        "additionalProperties": condition,
        "examples": [{"genres": {"in": ["Action"]}}],
    }


def query_parameter(field: Field) -> dict[str, Any]:
    """The OpenAPI query parameter of one option (``filter`` is JSON text, documented as such)."""
    param: dict[str, Any] = {
        "name": field.name,
        "in": "query",
        "required": False,
        "description": field.description,
    }
    if field.kind == "json":
        param["content"] = {"application/json": {"schema": _schema(field, True)}}
    else:
        param["schema"] = _schema(field, True)
        if field.kind == "ids":
            param.update(style="form", explode=True)
    return param


def query_parameters() -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` of the GET form."""
    return [query_parameter(field) for field in FIELDS]


def filter_query_parameter() -> dict[str, Any]:
    """The OpenAPI ``filter`` query parameter, for other routes that take one."""
    return query_parameter(FILTER)


def filter_from_query(query: Any) -> dict[str, Any] | None:
    """The ``filter`` of a Starlette ``QueryParams`` through the one parser (422 if bad)."""
    if "filter" not in query:
        return None
    return parse_options({"filter": query["filter"]}, "query").filter


def body_schema() -> dict[str, Any]:
    """The JSON schema of the POST body."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {field.name: _schema(field, False) for field in FIELDS},
    }
