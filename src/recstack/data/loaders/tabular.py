"""Loaders for a user's own CSV / TSV, JSON Lines and Parquet files (gzipped text too).

The file type comes from the extension; a ``ColumnMapping`` says which column holds what.
"""

from __future__ import annotations

from pathlib import Path

from recstack.data.loaders.catalog import build_items, build_users
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.progress import step_progress
from recstack.data.loaders.readers import RawTable, read_raw
from recstack.data.loaders.result import LoadedData, OnError, check_on_error, empty_interactions
from recstack.data.loaders.validate import build_interactions
from recstack.errors import ConfigError


def load_interactions(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    on_error: OnError = "fail",
    progress: bool = False,
) -> LoadedData:
    """Read events (who did what to which item, when) from a CSV, JSONL or Parquet file.

    Args:
        path: the file; ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``, text ones
            optionally ``.gz``.
        mapping: source column names (default: the canonical names).
        on_error: "fail" raises the first bad row (file, line, reason); "skip" drops bad rows
            and lists them in ``LoadedData.skipped``.
        progress: show a progress bar.

    Raises:
        DataError: a bad row under "fail".
        ConfigError: unsupported file, or a mapped column that the file lacks.
    """
    check_on_error(on_error)
    mapping = mapping or ColumnMapping()
    file = _existing_file(path)
    with step_progress(f"loading {file.name}", 2, progress) as steps:
        raw = _read(file, mapping)
        steps.advance("validating")
        interactions, skipped = build_interactions(raw, mapping, on_error)
        steps.advance("done")
    return LoadedData(interactions, skipped=skipped, source=str(file))


def load_items(
    path: str | Path, mapping: ColumnMapping | None = None, on_error: OnError = "fail"
) -> LoadedData:
    """Read a catalogue (id, title, text, attributes, active) from a CSV, JSONL or Parquet file.

    ``LoadedData.interactions`` is empty; ``items`` holds the catalogue. Attribute columns come
    from ``mapping.attributes`` and the JSON object column ``mapping.attributes_json``.
    """
    check_on_error(on_error)
    mapping = mapping or ColumnMapping()
    file = _existing_file(path)
    items, skipped = build_items(_read(file, mapping), mapping, on_error)
    return LoadedData(empty_interactions(), items=items, skipped=skipped, source=str(file))


def load_users(
    path: str | Path, mapping: ColumnMapping | None = None, on_error: OnError = "fail"
) -> LoadedData:
    """Read users (id and attributes) from a CSV, JSONL or Parquet file."""
    check_on_error(on_error)
    mapping = mapping or ColumnMapping()
    file = _existing_file(path)
    users, skipped = build_users(_read(file, mapping), mapping, on_error)
    return LoadedData(empty_interactions(), users=users, skipped=skipped, source=str(file))


def _existing_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"file not found: {file}")
    if file.is_dir():
        raise ConfigError(f"{file} is a directory; give the data file itself")
    return file


def _read(file: Path, mapping: ColumnMapping) -> RawTable:
    return read_raw(file, delimiter=mapping.delimiter, encoding=mapping.encoding)
