"""The body of ``POST /v1/events`` read straight from JSON: one event, or ``{"events": [...]}``.

A 1,000-event batch validated as pydantic models cost more than storing it. This reads the
decoded JSON with the schema's strict JSON types (``EventIn``: strings for ids, a number or
null for ``value``, an object for ``context``, no unknown keys) and hands plain tuples to the
runtime, where ``recstack.data.validation`` applies the content rules every other write path
applies (lengths, control characters, times, JSON context). Errors are 422s naming the field.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError

from recstack.errors import TooLargeError
from recstack.serving.engine.request import MAX_BATCH_EVENTS

FIELDS = ("event_id", "user_id", "item_id", "event_type", "value", "timestamp", "context")
REQUIRED = ("user_id", "item_id")
_TEXT = {"event_id", "user_id", "item_id", "event_type"}
_NUMBER = (int, float)
_NUMERIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def event_tuples(body: Any) -> list[tuple[Any, ...]]:
    """``body`` as event tuples in ``FIELDS`` order (``None`` where a field is absent)."""
    if isinstance(body, dict) and set(body) == {"events"}:
        events, prefix = body["events"], ("body", "events")
        if not isinstance(events, list):
            _fail(prefix, "Input should be a valid list", "list_type")
        if len(events) > MAX_BATCH_EVENTS:
            raise TooLargeError(
                f"a batch may hold at most {MAX_BATCH_EVENTS} events; got {len(events)}"
            )
    elif isinstance(body, dict):
        events, prefix = [body], ("body",)
    else:
        _fail(("body",), 'Input should be an event object or {"events": [...]}', "dict_type")
    return [_event(event, (*prefix, i) if len(prefix) > 1 else prefix) for i, event in
            enumerate(events)]  # fmt: skip


def recommendation_ids(body: Any) -> list[str | None]:
    """Each event's ``recommendation_id`` (None where absent), in ``event_tuples`` order; call
    after ``event_tuples`` has validated ``body``."""
    events = body["events"] if isinstance(body, dict) and set(body) == {"events"} else [body]
    return [event.get("recommendation_id") for event in events]


def _event(event: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    if type(event) is not dict:
        _fail(loc, "Input should be a valid dictionary or object", "model_type")
    get = event.get
    for name in REQUIRED:
        if name not in event:
            _fail((*loc, name), "Field required", "missing")
    if len(event) > len(REQUIRED):
        for name, value in event.items():
            if name not in _TEXT:
                _other(name, value, loc)
            elif type(value) is not str and not (value is None and name == "event_id"):
                _fail((*loc, name), "Input should be a valid string", "string_type")
    else:
        for name in REQUIRED:
            if type(event[name]) is not str:
                _fail((*loc, name), "Input should be a valid string", "string_type")
    stamp = get("timestamp")
    if type(stamp) is str:
        stamp = _epoch(stamp, (*loc, "timestamp"))
    return (
        get("event_id"),
        event["user_id"],
        event["item_id"],
        get("event_type", "view"),
        get("value"),
        stamp,
        get("context"),
    )


def _epoch(text: str, loc: tuple[Any, ...]) -> int | float:
    """An ISO 8601 time (UTC when it names no zone) or a number in text, as epoch seconds."""
    try:
        return float(text) if _NUMERIC.fullmatch(text) else _iso_seconds(text)
    except ValueError:
        _fail(loc, f"Input should be epoch seconds or an ISO 8601 time, not {text[:40]!r}",
              "datetime_from_date_parsing")  # fmt: skip
    raise AssertionError  # unreachable: _fail raises


def _iso_seconds(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def _other(name: str, value: Any, loc: tuple[Any, ...]) -> None:
    if name == "value":
        if value is not None and (type(value) is bool or not isinstance(value, _NUMBER)):
            _fail((*loc, name), "Input should be a valid number", "float_type")
        if type(value) is float and not math.isfinite(value):
            _fail((*loc, name), "Input should be a finite number", "finite_number")
    elif name == "timestamp":
        if value is not None and (type(value) is bool or not isinstance(value, (*_NUMBER, str))):
            _fail((*loc, name), "Input should be a valid datetime", "datetime_type")
    elif name == "recommendation_id":
        if value is not None and (type(value) is not str or not 0 < len(value) <= 64):
            _fail((*loc, name), "Input should be a string of 1 to 64 characters", "string_type")
    elif name == "context":
        if value is not None and type(value) is not dict:
            _fail((*loc, name), "Input should be a valid dictionary", "dict_type")
    else:
        _fail((*loc, name), "Extra inputs are not permitted", "extra_forbidden")


def _fail(loc: tuple[Any, ...], message: str, kind: str) -> None:
    raise RequestValidationError([{"loc": loc, "msg": message, "type": kind}])
