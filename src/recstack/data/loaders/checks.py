"""Row-level error bookkeeping shared by the loaders: masks in, DataErrors with lines out.

Checks register a boolean mask over all rows plus a function wording the reason for one row;
Python only runs that function for rows that fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.readers import RawTable
from recstack.data.loaders.result import OnError
from recstack.errors import ConfigError, DataError


class RowChecks:
    """Collects per-row failure masks and words an error for each failing row."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._checks: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def add(self, bad: np.ndarray, describe: Callable[[int], str]) -> None:
        """Register rows where ``bad`` holds; ``describe(row)`` words the reason for one row."""
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            self._checks.append((bad, describe))

    def bad_mask(self) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        for bad, _ in self._checks:
            mask |= bad
        return mask

    def errors(self, raw: RawTable) -> list[DataError]:
        """One DataError per failing row, with its file and physical line."""
        rows = np.flatnonzero(self.bad_mask())
        if len(rows) == 0:
            return []
        lines = raw.line_of(raw.frame.index.to_numpy()[rows])
        out = []
        for row, line in zip(rows.tolist(), lines.tolist(), strict=True):
            reasons = [describe(row) for bad, describe in self._checks if bad[row]]
            out.append(DataError("; ".join(reasons), file=raw.file, line=int(line)))
        return out


def resolve_column(
    raw: RawTable, mapping: ColumnMapping, name: str, *, required: bool = False
) -> str | None:
    """The source column for mapping field ``name``, or None when the field is off or absent.

    Raises:
        ConfigError: a required column, or one the mapping named explicitly, is not in the file.
    """
    column = getattr(mapping, name)
    if column is None:
        return None
    if column in raw.frame.columns:
        return column
    if required or not mapping.is_default(name):
        available = ", ".join(map(str, raw.frame.columns)) or "(none)"
        raise ConfigError(
            f"{raw.file}: column {column!r} (for {name}) not found; available columns: {available}"
        )
    return None


def finish(
    raw: RawTable, checks: RowChecks, on_error: OnError
) -> tuple[np.ndarray, list[DataError]]:
    """Merge parse errors with row errors; raise the first under "fail", else return the keep
    mask and the skipped rows in line order."""
    errors = sorted(raw.errors + checks.errors(raw), key=lambda e: e.line or 0)
    if errors and on_error == "fail":
        raise errors[0]
    return ~checks.bad_mask(), errors


def show_cell(value: Any) -> str:
    """A short printable form of a raw cell for error messages."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
