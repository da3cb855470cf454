"""Events as stream messages: how a producer writes one and how a consumer reads it back.

A message carries one event, either as a JSON object in the field ``event`` (the form
``publish_events`` writes, the same bytes a Kafka record value would hold) or as flat fields
named like the event's columns (``event_id``, ``user_id``, ``item_id``, ``event_type``,
``timestamp``, optional ``value`` and ``context`` as JSON text). Every value goes through
the one validation of ``recstack.data.validation``, so a message the consumer accepts is an
event ``POST /v1/events`` would accept, and a rejected one carries the same reason.

A rejected message is *parked*: copied to a dead-letter stream with its reason, so nothing is
dropped silently and it can be fixed and replayed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from recstack.data.validation import (
    check_context,
    check_event_type,
    check_id,
    check_timestamp,
    check_value,
    dumps_json,
)
from recstack.errors import DataError
from recstack.store.event_rows import EventRow

EVENT_FIELD = "event"
REQUIRED = ("event_id", "user_id", "item_id", "event_type", "timestamp")
OPTIONAL = ("value", "context")
PARKED_PREFIX = "_"  # fields the dead-letter stream adds beside the original ones


def _text(raw: bytes | str, what: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{what} is not UTF-8 text") from None


def decode_fields(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """A message's fields as text (a field that is not UTF-8 is a ``DataError``)."""
    return {
        _text(k, "a field name"): _text(v, f"field {_text(k, 'name')!r}") for k, v in fields.items()
    }


def message_event(fields: Mapping[bytes | str, bytes | str]) -> EventRow:
    """The event one message carries, checked; a ``DataError`` says what is wrong with it.

    >>> message_event({b"event": b'{"event_id": "e1", "user_id": "u1", "item_id": "i9",'
    ...                           b' "event_type": "view", "timestamp": 1600000000}'})
    EventRow(event_id='e1', user_id='u1', item_id='i9', event_type='view', value=None, timestamp=1600000000, context=None)
    >>> message_event({"event_id": "e2", "user_id": "u1", "item_id": "i9",
    ...                "event_type": "rating", "value": "4.5", "timestamp": "1600000060"}).value
    4.5
    """  # noqa: E501
    text = decode_fields(fields)
    if EVENT_FIELD in text:
        if len(text) > 1:
            extra = sorted(set(text) - {EVENT_FIELD})
            raise DataError(f"a message with an 'event' field has no other fields, got {extra}")
        try:
            body: Any = json.loads(text[EVENT_FIELD])
        except json.JSONDecodeError as exc:
            raise DataError(f"field 'event' is not JSON: {exc.msg} at char {exc.pos}") from None
        if not isinstance(body, dict):
            raise DataError(f"field 'event' must be a JSON object, got {type(body).__name__}")
    else:
        body = {k: (v if v != "" else None) for k, v in text.items()}
    missing = [k for k in REQUIRED if body.get(k) is None]
    if missing:
        raise DataError(f"not an event: missing {', '.join(missing)}")
    unknown = sorted(set(body) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise DataError(f"unknown event fields {unknown}; known: {list(REQUIRED + OPTIONAL)}")
    return EventRow(
        check_id(body["event_id"], "event_id"),
        check_id(body["user_id"], "user_id"),
        check_id(body["item_id"], "item_id"),
        check_event_type(body["event_type"]),
        check_value(body.get("value")),
        check_timestamp(body["timestamp"]),
        check_context(body.get("context")),
    )


def event_message(event: Mapping[str, Any] | EventRow) -> dict[str, str]:
    """The message fields for one event (the JSON form).

    >>> event_message({"event_id": "e1", "user_id": "u", "item_id": "i", "event_type": "view",
    ...                "timestamp": 5})
    {'event': '{"event_id":"e1","user_id":"u","item_id":"i","event_type":"view","timestamp":5}'}
    """
    body = event._asdict() if isinstance(event, EventRow) else dict(event)
    if isinstance(body.get("context"), str):
        body["context"] = json.loads(body["context"])
    return {EVENT_FIELD: dumps_json({k: v for k, v in body.items() if v is not None})}


def publish_events(
    client: Any, stream: str, events: Iterable[Mapping[str, Any] | EventRow]
) -> list[str]:
    """Append events to ``stream`` (one message each, pipelined); returns their message ids."""
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, event_message(event))
    return [_text(i, "id") for i in pipe.execute()]


def parked_fields(
    fields: Mapping[bytes | str, bytes | str], message_id: str, reason: str, consumer: str
) -> dict[bytes | str, bytes | str]:
    """A dead-letter entry: the original fields unchanged plus why and where it was parked."""
    out: dict[bytes | str, bytes | str] = dict(fields)
    out.update(
        {
            f"{PARKED_PREFIX}reason": reason,
            f"{PARKED_PREFIX}source_id": message_id,
            f"{PARKED_PREFIX}consumer": consumer,
            f"{PARKED_PREFIX}parked_at": str(int(time.time())),
        }
    )
    return out
