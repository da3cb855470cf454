"""Events as plain rows: the store's online write path (the HTTP API's), with no pandas.

Rows are ``EventRow``s, tuples in the same order, or mappings keyed by column name. They are
checked by ``recstack.data.validation`` (the rules and messages of the bulk frames) and
handed to the backend's event writer: idempotent by event_id, unknown users created, unknown
items rejected unless ``create_items``, all or nothing per call, committed before it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy.engine import Engine

from recstack.data.schema import INTERACTION_COLUMNS
from recstack.data.validation import EventColumns, event_columns
from recstack.errors import DataError
from recstack.store.backend import event_writer

SMALL_BATCH_ROWS = 10_000  # frames up to this size take the row path (the API's batch limit)


class EventRow(NamedTuple):
    """One interaction in canonical column order (``INTERACTION_COLUMNS``).

    ``value`` None means no value; ``timestamp`` is epoch seconds; ``context`` a dict, JSON
    text or None.
    """

    event_id: str
    user_id: str
    item_id: str
    event_type: str
    value: float | None
    timestamp: int
    context: Any = None


EventInput = Sequence[Sequence[Any] | Mapping[str, Any]]
_SEQUENCES = frozenset({EventRow, tuple, list})


def add_event_rows(
    engine: Engine,
    rows: EventInput,
    *,
    create_items: bool = False,
    source: str | None = "events",
) -> int:
    """Store events durably (committed before returning); returns how many were new.

    Raises ``DataError`` for a bad row and ``NotFoundError`` naming unknown items (nothing of
    the batch is written in either case).
    """
    columns = check_event_rows(rows, source)
    if not columns[0]:
        return 0
    return event_writer(engine).write(columns, create_items=create_items)


def add_event_columns(engine: Engine, columns: EventColumns, *, create_items: bool = False) -> int:
    """``add_event_rows`` for events already checked and typed by
    ``validation.event_columns`` (the API checks them once, before it looks up their items)."""
    if not columns[0]:
        return 0
    return event_writer(engine).write(columns, create_items=create_items)


def check_event_rows(rows: EventInput, source: str | None = "events") -> EventColumns:
    """``rows`` checked and typed, as columns (see ``validation.event_columns``)."""
    if not _SEQUENCES.issuperset(map(type, rows)):
        rows = record_rows(rows, source)
    return event_columns(rows, source)  # type: ignore[arg-type]


def prepare_event_rows(
    rows: Sequence[Sequence[Any]], source: str | None = "events"
) -> list[tuple[Any, ...]]:
    """Rows checked and typed for the store, like ``frames.prepare_interactions`` does frames:
    ``(event_id, user_id, item_id, event_type, value | None, timestamp int, context | None)``.
    """
    return list(zip(*event_columns(rows, source), strict=True))


def record_rows(rows: EventInput, source: str | None = "events") -> list[Sequence[Any]]:
    """Rows with each mapping (keyed by column name) made a tuple; in a mapping ``value`` and
    ``context`` may be left out, a missing required key reads as a missing value and other
    keys are an error."""
    known = frozenset(INTERACTION_COLUMNS)
    out: list[Sequence[Any]] = []
    for row, record in enumerate(rows):
        if isinstance(record, Mapping):
            if not known.issuperset(record):
                extra = ", ".join(sorted(map(str, set(record) - known)))
                raise DataError(
                    f"row {row} of the interactions has unknown fields: {extra}", file=source
                )
            record = tuple(record.get(c) for c in INTERACTION_COLUMNS)
        elif isinstance(record, str | bytes) or not isinstance(record, Sequence):
            raise DataError(
                f"row {row} of the interactions is not a row or mapping: {record!r}", file=source
            )
        out.append(record)
    return out


def frame_rows(frame: pd.DataFrame, source: str | None = "events") -> list[tuple[Any, ...]]:
    """A canonical interaction frame as row tuples (``value``/``context`` may be absent)."""
    missing = [
        c for c in INTERACTION_COLUMNS if c not in frame.columns and c not in ("value", "context")
    ]
    if missing:
        raise DataError(f"interactions are missing columns: {', '.join(missing)}", file=source)
    n = len(frame)
    columns = [frame[c].tolist() if c in frame.columns else [None] * n for c in INTERACTION_COLUMNS]
    return list(zip(*columns, strict=True))
