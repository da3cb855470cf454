"""ColumnMapping: how the columns of a user's CSV, Parquet or JSONL file map to the canonical ones.

A mapping names, for each canonical field, the source column holding it. Required columns
(``user_id``, ``item_id``, and ``timestamp`` unless set to ``None``) must exist in the file. Optional
columns left at their default name may be absent (the field then gets its default: the
``default_event_type``, a NaN value, a derived event id, no title...); an optional column the
mapping names explicitly must exist. ``None`` switches a field off, except for ``context`` and
``active``, where ``None`` means "the column named ``context`` / ``active`` if the file has one".
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from recstack.errors import ConfigError

TimestampUnit = Literal["auto", "s", "ms", "iso"]
TIMESTAMP_UNITS: tuple[str, ...] = ("auto", "s", "ms", "iso")
NULLABLE_FIELDS = frozenset(
    {"event_type", "value", "timestamp", "event_id", "context", "title", "text"}
    | {"attributes_json", "active", "delimiter"}
)


@dataclass
class ColumnMapping:
    """Source column names for the canonical interaction, item and user fields.

    Attributes:
        user_id, item_id: columns holding the external ids (required).
        event_type: column of event types; rows where it is empty get ``default_event_type``.
        value: numeric column (a rating, a price, a watch fraction); NaN when empty.
        timestamp: event time column; ``None`` means the file has none and every event gets 0.
        event_id: unique event id column; when absent, ids are derived from the row content so
            re-ingesting the same file yields the same ids.
        context: column holding a JSON object per event (a JSON string or a nested object).
        default_event_type: event type used when the file has no event type.
        timestamp_unit: ``auto`` reads numbers as epoch seconds, or milliseconds above 1e11,
            and strings as ISO 8601 (naive times are UTC); ``s``/``ms``/``iso`` force one reading.
        event_type_map: renames source event types, e.g. ``{"play": "view"}``.
        title, text: item title and free text (what content models embed).
        attributes: extra columns copied into the item's (or user's) ``attributes``.
        attributes_json: column holding a JSON object of attributes (as ``write_loaded`` writes).
        active: boolean column marking items that may be recommended.
        list_separator: attribute strings containing it are split into lists ("Action|Comedy").
        delimiter: CSV field separator; ``None`` detects it from the header line.
        encoding: text encoding of CSV and JSONL files.
    """

    user_id: str = "user_id"
    item_id: str = "item_id"
    event_type: str | None = "event_type"
    value: str | None = "value"
    timestamp: str | None = "timestamp"
    event_id: str | None = "event_id"
    context: str | None = None
    default_event_type: str = "view"
    timestamp_unit: TimestampUnit = "auto"
    event_type_map: dict[str, str] = field(default_factory=dict)
    title: str | None = "title"
    text: str | None = "text"
    attributes: list[str] = field(default_factory=list)
    attributes_json: str | None = "attributes"
    active: str | None = None
    list_separator: str = "|"
    delimiter: str | None = None
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.timestamp_unit not in TIMESTAMP_UNITS:
            raise ConfigError(
                f"timestamp_unit must be one of {', '.join(TIMESTAMP_UNITS)}, "
                f"not {self.timestamp_unit!r}"
            )
        if not self.default_event_type.strip():
            raise ConfigError("default_event_type must not be empty")
        if self.delimiter is not None and len(self.delimiter) == 0:
            raise ConfigError("delimiter must not be empty")
        self.attributes = list(self.attributes)

    @classmethod
    def from_toml(cls, path: str | Path) -> ColumnMapping:
        """Read a mapping from a TOML file whose keys are this class's field names.

        Raises:
            ConfigError: the file is missing or not valid TOML, a key is unknown, or a value has
                the wrong type.
        """
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"mapping file not found: {p}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
        return cls.from_dict(raw, source=str(p))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "mapping") -> ColumnMapping:
        """Build a mapping from a plain dict (keys = field names), checking keys and types.

        TOML has no null, so ``false`` or ``""`` switch an optional column off (``None``).
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(
                f"{source}: unknown mapping key {unknown[0]!r}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        values = {}
        for name, value in raw.items():
            if name in NULLABLE_FIELDS and (value is False or value == ""):
                value = None
            _check_type(source, name, value)
            values[name] = value
        return cls(**values)

    def is_default(self, name: str) -> bool:
        """Whether field ``name`` still holds its default (so an absent column is tolerated)."""
        f = {f.name: f for f in fields(self)}[name]
        return getattr(self, name) == _default_of(f)


def _default_of(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory()


def _check_type(source: str, name: str, value: Any) -> None:
    """Reject values whose type cannot be what the field holds."""
    if name == "attributes":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        expected = "a list of column names"
    elif name == "event_type_map":
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
        expected = "a table of source type = canonical type"
    elif name in NULLABLE_FIELDS:
        ok = value is None or isinstance(value, str)
        expected = "a column name (or false to switch it off)"
    else:
        ok = isinstance(value, str)
        expected = "a string"
    if not ok:
        raise ConfigError(f"{source}: {name} must be {expected}, not {value!r}")
