"""Raw readers for delimited text, JSON Lines and Parquet that keep track of physical line numbers.

Each reader returns a ``RawTable``: the source columns as read, the rows that could not be parsed
at all (a CSV row with the wrong number of fields, a line that is not a JSON object), and a way
to turn row positions into the physical line a user can open the file at. Parsing runs in
pyarrow's C++ readers; Python only touches rows that are broken.

Line numbers assume one record per physical line: a quoted CSV field with an embedded newline
shifts the numbers of the rows after it.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from recstack.errors import ConfigError, DataError

LineLocator = Callable[[np.ndarray], np.ndarray]
SNIFFED_DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
# a stand-in for multi-character separators such as MovieLens 1M's "::"
UNIT_SEPARATOR = "\x1f"


@dataclass
class RawTable:
    """Source columns as read, plus what is needed to report errors by line.

    ``frame.index`` holds row positions; ``line_of(positions)`` maps them to 1-based physical
    line numbers (Parquet: 1-based row numbers). ``errors`` lists rows dropped while parsing.
    """

    frame: pd.DataFrame
    file: str
    line_of: LineLocator
    errors: list[DataError] = field(default_factory=list)


def file_format(path: Path) -> str:
    """The format name (csv, tsv, jsonl, parquet) from the file name; ``.gz`` is allowed."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in (
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".txt", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise ConfigError(
        f"{path}: unsupported file type; expected .csv, .tsv, .jsonl, .ndjson, .parquet "
        "(text formats may be gzipped: .csv.gz, .jsonl.gz)"
    )


def read_raw(path: Path, delimiter: str | None = None, encoding: str = "utf-8") -> RawTable:
    """Read any supported file by its extension, keeping every column as found."""
    fmt = file_format(path)
    if fmt == "parquet":
        return read_parquet_raw(path)
    if fmt == "jsonl":
        return read_jsonl_raw(path, encoding=encoding)
    if delimiter is None and fmt == "tsv":
        delimiter = "\t"
    return read_delimited(path, delimiter=delimiter, encoding=encoding)


def open_text_bytes(path: Path) -> bytes:
    """The whole file as bytes, decompressed when it ends in ``.gz``."""
    if not path.exists():
        raise ConfigError(f"file not found: {path}")
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def first_line(path: Path, encoding: str = "utf-8") -> str:
    """The first line of a (possibly gzipped) text file, without its newline."""
    if not path.exists():
        raise ConfigError(f"file not found: {path}")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
        return fh.readline().rstrip("\r\n").lstrip("\ufeff")


def sniff_delimiter(line: str) -> str:
    """The most frequent of ``, ; TAB`` in a header or first data line (comma on ties).

    A pipe is chosen only when none of those occur: pipes often separate list values inside
    fields ("Action|Comedy").
    """
    counts = [(line.count(d), -i, d) for i, d in enumerate(SNIFFED_DELIMITERS[:-1])]
    best = max(counts)
    if best[0] > 0:
        return best[2]
    return "|" if "|" in line else ","


def read_delimited(
    path: Path,
    *,
    names: Sequence[str] | None = None,
    header: bool = True,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> RawTable:
    """Read delimited text with every column as a string.

    Column names come from the header line unless ``names`` is given; ``header=False`` says the
    file has no header line (then ``names`` is required). Rows with the wrong number of fields
    become errors; blank lines are ignored. A separator of more than one character (MovieLens
    1M's ``::``) is supported by substituting it first.
    """
    file = str(path)
    top = first_line(path, encoding)
    sep = delimiter or sniff_delimiter(top)
    if names is None:
        if not header:
            raise ValueError("a file without a header needs column names")
        if not top.strip():
            raise DataError("empty file: expected a header line naming the columns", file=file)
        names = [c.strip().strip('"') for c in _split_header(top, sep)]
    skip, first_data_line = (1, 2) if header else (0, 1)
    source: object = str(path)
    if len(sep) > 1:
        source = io.BytesIO(open_text_bytes(path).replace(sep.encode(encoding), b"\x1f"))
        sep = UNIT_SEPARATOR
    bad_lines: list[int] = []
    errors: list[DataError] = []
    n_fields = len(names)

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        if row.number is not None and row.text.strip():
            bad_lines.append(row.number)
            errors.append(
                DataError(
                    f"expected {n_fields} fields, found {row.actual_columns}",
                    file=file,
                    line=row.number,
                )
            )
        elif row.number is not None:
            bad_lines.append(row.number)
        return "skip"

    try:
        table = _read_csv_table(source, names, skip, sep, encoding, on_invalid_row)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _csv_error(exc, file, encoding) from exc
    frame = table.to_pandas()
    dropped = np.sort(np.asarray(bad_lines, dtype=np.int64))
    # kept row r sits at line first + r + (number of dropped lines before it)
    shifted = dropped - first_data_line - np.arange(len(dropped))

    def line_of(positions: np.ndarray) -> np.ndarray:
        pos = np.asarray(positions, dtype=np.int64)
        return first_data_line + pos + np.searchsorted(shifted, pos, side="right")

    if len(frame.columns) > 0 and len(frame) > 0:
        blank = (frame == "").all(axis=1).to_numpy()
        if blank.any():
            frame = frame.loc[~blank]
    return RawTable(frame, file, line_of, sorted(errors, key=lambda e: e.line or 0))


def _read_csv_table(
    source: object,
    names: Sequence[str],
    skip: int,
    sep: str,
    encoding: str,
    on_invalid_row: Callable[[pacsv.InvalidRow], str],
) -> pa.Table:
    return pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(
            column_names=list(names),
            skip_rows=skip,
            encoding=encoding,
            use_threads=False,  # serial parsing is what gives invalid rows their line number
            block_size=1 << 24,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=sep, ignore_empty_lines=False, invalid_row_handler=on_invalid_row
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False
        ),
    )


def _csv_error(exc: Exception, file: str, encoding: str) -> DataError:
    """A DataError for a file the CSV parser rejects as a whole (bad encoding, binary data)."""
    message = str(exc)
    match = re.search(r"Row #(\d+)", message)
    line = int(match.group(1)) if match else None
    if "UTF8" in message or isinstance(exc, UnicodeDecodeError):
        return DataError(
            f"text is not valid {encoding}; set the file's encoding in the column mapping",
            file=file,
            line=line,
        )
    return DataError(f"cannot parse as delimited text: {message}", file=file, line=line)


def _split_header(header: str, sep: str) -> list[str]:
    if len(sep) == 1:
        return next(iter(pd.read_csv(io.StringIO(header), sep=sep, header=None, dtype=str).values))
    return header.split(sep)


def read_jsonl_raw(path: Path, encoding: str = "utf-8") -> RawTable:
    """Read JSON Lines: one JSON object per line, blank lines ignored.

    pyarrow parses well-formed files in C++. When it cannot (a broken line, a field whose type
    changes between lines), lines are parsed one by one so every bad line is reported by number.
    """
    data = open_text_bytes(path)
    if encoding.lower().replace("-", "") not in {"utf8", "ascii"}:
        data = data.decode(encoding).encode("utf-8")
    try:
        table = pajson.read_json(
            io.BytesIO(data), read_options=pajson.ReadOptions(block_size=1 << 24)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _read_jsonl_line_by_line(path, data)
    frame = table.to_pandas(types_mapper=_nullable_types)

    def line_of(positions: np.ndarray) -> np.ndarray:
        return _nonblank_line_numbers(data)[np.asarray(positions, dtype=np.int64)]

    return RawTable(frame, str(path), line_of)


def _nullable_types(t: pa.DataType) -> object:
    """Integers stay integers when a column has nulls (ids must not turn into 1.0)."""
    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def _nonblank_line_numbers(data: bytes) -> np.ndarray:
    lines = data.split(b"\n")
    return np.asarray([i + 1 for i, line in enumerate(lines) if line.strip()], dtype=np.int64)


def _read_jsonl_line_by_line(path: Path, data: bytes) -> RawTable:
    records: list[dict] = []
    line_numbers: list[int] = []
    errors: list[DataError] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            errors.append(DataError(f"invalid JSON: {reason}", file=str(path), line=number))
            continue
        if not isinstance(obj, dict):
            errors.append(
                DataError(
                    f"expected a JSON object, found {type(obj).__name__}",
                    file=str(path),
                    line=number,
                )
            )
            continue
        records.append(obj)
        line_numbers.append(number)
    frame = pd.DataFrame(records, dtype=object) if records else pd.DataFrame()
    numbers = np.asarray(line_numbers, dtype=np.int64)

    def line_of(positions: np.ndarray) -> np.ndarray:
        return numbers[np.asarray(positions, dtype=np.int64)]

    return RawTable(frame, str(path), line_of, errors)


def read_parquet_raw(path: Path, columns: Sequence[str] | None = None) -> RawTable:
    """Read a Parquet file (optionally only ``columns``); rows are numbered from 1."""
    if not path.exists():
        raise ConfigError(f"file not found: {path}")
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read Parquet file: {exc}", file=str(path)) from exc
    frame = table.to_pandas(types_mapper=_nullable_types)

    def line_of(positions: np.ndarray) -> np.ndarray:
        return np.asarray(positions, dtype=np.int64) + 1

    return RawTable(frame, str(path), line_of)
