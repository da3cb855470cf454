"""Spark ETL against the single-machine loaders: same rows, same ids, same bad-row reports."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from recstack.data.loaders import load_interactions, load_movielens
from recstack.data.synthetic import generate_synthetic
from recstack.errors import DataError

pytestmark = pytest.mark.spark

COLUMNS = ["event_id", "user_id", "item_id", "event_type", "value", "timestamp", "context"]


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[COLUMNS].copy()
    out["context"] = out["context"].astype(object).where(out["context"].notna(), None)
    for column in ("event_id", "user_id", "item_id", "event_type"):
        out[column] = out[column].astype(str)
    return out.sort_values("event_id").reset_index(drop=True)


def listing(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def two_files(tmp_path_factory) -> Path:
    """Two CSV files without event ids: the first repeats one row exactly (two events), the
    second re-sends 30 rows of the first (the same events again)."""
    root = tmp_path_factory.mktemp("raw")
    events = generate_synthetic(n_users=40, n_items=30, n_events=400, seed=3).interactions
    events = events.drop(columns=["event_id", "context"])
    first = pd.concat([events, events.iloc[[5]]], ignore_index=True)
    second = pd.concat([events.iloc[100:130], events.iloc[[5]]], ignore_index=True)
    first.to_csv(root / "a.csv", index=False)
    second.to_csv(root / "b.csv", index=False)
    return root


def test_etl_gives_the_ingest_rows_and_ids_deduplicated(spark, two_files, tmp_path):
    from recstack.distributed.etl import BUCKET_COLUMN, run_etl

    result = run_etl(spark, two_files, tmp_path / "out", buckets=4)
    singles = [load_interactions(two_files / name).interactions for name in ("a.csv", "b.csv")]
    expected = pd.concat(singles, ignore_index=True).drop_duplicates("event_id")
    written = pd.read_parquet(tmp_path / "out")
    assert result.rows == len(expected) == 401  # the exact repeat is a second event
    assert result.duplicates == 31 and result.bad_rows == 0
    pd.testing.assert_frame_equal(canonical(written), canonical(expected), check_dtype=False)
    buckets = {p.name for p in (tmp_path / "out").glob(f"{BUCKET_COLUMN}=*")}
    assert buckets and buckets <= {f"{BUCKET_COLUMN}={b}" for b in range(4)}
    per_user = written.groupby("user_id")[BUCKET_COLUMN].nunique()
    assert (per_user == 1).all()  # a user's events live in one bucket


@pytest.fixture
def movielens_dir(tmp_path) -> Path:
    """A MovieLens-100K layout whose line 7 has a timestamp that is not a number."""
    root = tmp_path / "ml"
    root.mkdir()
    lines = [
        f"{u}\t{i}\t{(u + i) % 5 + 1}\t{880000000 + 10 * u + i}"
        for u in (1, 2)
        for i in range(1, 7)
    ]
    lines[6] = "2\t1\t4\tyesterday"
    (root / "u.data").write_text("\n".join(lines) + "\n")
    flags = "|".join(["0"] * 18 + ["1"])
    movies = [f"{i}|Movie {i} (1995)|01-Jan-1995||http://x/{i}|{flags}" for i in range(1, 7)]
    (root / "u.item").write_text("\n".join(movies) + "\n")
    return root


def test_malformed_row_reported_with_its_line_and_output_unchanged(spark, movielens_dir, tmp_path):
    from recstack.distributed.etl import run_etl

    out = tmp_path / "outputs" / "out"
    good = movielens_dir.parent / "good"
    good.mkdir()
    (good / "u.data").write_text("1\t1\t5\t880000001\n")
    (good / "u.item").write_text((movielens_dir / "u.item").read_text())
    run_etl(spark, good, out)
    before = listing(out)

    with pytest.raises(DataError) as failed:
        run_etl(spark, movielens_dir, out)
    assert failed.value.line == 7 and failed.value.file.endswith("u.data")
    assert "timestamp" in failed.value.reason
    assert listing(out) == before  # nothing written, nothing half-written
    assert [p.name for p in out.parent.iterdir()] == ["out"]  # no staging left behind

    skipped = run_etl(spark, movielens_dir, out, on_error="skip")
    single = load_movielens(movielens_dir, on_error="skip")
    assert [(e.line, e.reason) for e in skipped.errors] == [
        (e.line, e.reason) for e in single.skipped
    ]
    written = pd.read_parquet(out)
    pd.testing.assert_frame_equal(
        canonical(written), canonical(single.interactions), check_dtype=False
    )
    assert written["event_id"].str.startswith("ml:").all()
    assert (out / "_bad_rows.jsonl").read_text().count('"line": 7') == 1


def test_cli_etl_names_the_bad_line_and_exits_with_a_data_error(spark, movielens_dir, tmp_path):
    from typer.testing import CliRunner

    from recstack.cli.app import app

    out = tmp_path / "cli-out"
    result = CliRunner().invoke(
        app,
        ["--home", str(tmp_path / "home"), "spark", "etl", str(movielens_dir), "--out", str(out)],
    )
    assert result.exit_code == 1, result.output
    assert "u.data:7:" in result.output and "timestamp" in result.output
    assert not out.exists()


def test_jsonl_with_a_broken_line_gives_the_ingest_rows_and_report(spark, tmp_path):
    import json

    from recstack.distributed.etl import run_etl

    events = generate_synthetic(n_users=15, n_items=10, n_events=80, seed=5).interactions
    events["context"] = [json.dumps({"page": i % 3}) if i % 2 else None for i in range(80)]
    lines = [json.dumps(r, default=str) for r in events.drop(columns="event_id").to_dict("records")]
    lines.insert(9, "{broken")
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines).replace("NaN", "null") + "\n")

    result = run_etl(spark, source, tmp_path / "out", on_error="skip")
    single = load_interactions(source, on_error="skip")
    assert [(e.line, e.reason) for e in result.errors] == [
        (e.line, e.reason) for e in single.skipped
    ]
    assert result.errors[0].line == 10
    written = pd.read_parquet(tmp_path / "out")
    pd.testing.assert_frame_equal(
        canonical(written), canonical(single.interactions), check_dtype=False
    )
