"""The store commands end to end through Typer's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.settings import get_settings

EVENTS_CSV = """user_id,item_id,event_type,value,timestamp
alice,sql-101,view,,1700000000
alice,sql-101,complete,,1700000500
bob,py-200,rate,4.5,1700000100
bob,sql-101,view,,1700000200
"""

ITEMS_CSV = """item_id,title,text,level,tags
sql-101,Intro to SQL,Joins and indexes,1,db|sql
py-200,Python basics,,1,python
ml-300,Machine learning,Models and metrics,3,ml
"""

BAD_CSV = """user,item,when
carol,sql-101,1700000000
dave,py-200,yesterday-ish
"""


@pytest.fixture
def cli(store_settings, monkeypatch):  # noqa: ANN201 - returns a runner function
    """Run ``recstack ...`` against the test store; returns the Result."""
    monkeypatch.setenv("RECSTACK_HOME", str(store_settings.home))
    monkeypatch.setenv("RECSTACK_DATABASE_URL", store_settings.store_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str):  # noqa: ANN202
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def _stats(cli) -> dict:  # noqa: ANN001
    result = cli("stats", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_init_then_ingest_and_stats(cli, tmp_path) -> None:
    result = cli("init")
    assert result.exit_code == 0, result.output
    assert "store:" in result.stdout and "0 interactions" in result.stdout

    events = tmp_path / "events.csv"
    events.write_text(EVENTS_CSV)
    result = cli("ingest", "interactions", str(events))
    assert result.exit_code == 0, result.output
    assert "read 4 · inserted 4 · duplicates 0 · skipped 0" in result.stdout
    assert "rows/s" in result.stdout

    stats_out = cli("stats", "--json").stdout
    assert len(stats_out.strip().splitlines()) == 1  # exactly one JSON object
    stats = json.loads(stats_out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (2, 2, 4)
    assert stats["event_types"] == {"view": 2, "complete": 1, "rate": 1}

    again = cli("ingest", "interactions", str(events))
    assert "inserted 0 · duplicates 4" in again.stdout
    assert _stats(cli)["interactions"] == 4

    table = cli("stats")
    assert table.exit_code == 0 and "interactions" in table.stdout


def test_ingest_items_with_attribute_columns(cli, tmp_path) -> None:
    items = tmp_path / "items.csv"
    items.write_text(ITEMS_CSV)
    result = cli(
        "ingest", "items", str(items), "--attribute-col", "level", "--attribute-col", "tags"
    )
    assert result.exit_code == 0, result.output
    assert "new items 3" in result.stdout
    from recstack.store import Store

    store = Store.from_settings(get_settings())
    try:
        record = store.get_item("sql-101")
        assert record["title"] == "Intro to SQL"
        assert record["attributes"]["tags"] == ["db", "sql"]
    finally:
        store.close()


def test_malformed_file_exits_with_file_and_line(cli, tmp_path) -> None:
    good = tmp_path / "events.csv"
    good.write_text(EVENTS_CSV)
    cli("ingest", "interactions", str(good))
    before = _stats(cli)

    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV)
    result = cli(
        "ingest",
        "interactions",
        str(bad),
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--timestamp-col",
        "when",
    )
    assert result.exit_code == 1
    assert f"{bad}:3:" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()[-1]) > 0
    assert _stats(cli) == before  # nothing of the bad file was stored

    skipped = cli(
        "ingest",
        "interactions",
        str(bad),
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--timestamp-col",
        "when",
        "--on-error",
        "skip",
    )
    assert skipped.exit_code == 0
    assert "inserted 1" in skipped.stdout and "skipped 1" in skipped.stdout
    assert f"{bad}:3" in skipped.stderr


def test_usage_errors(cli, tmp_path) -> None:
    missing = cli("ingest", "interactions", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "Invalid value" in missing.output
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('user_id = "user"\nno_such_key = 1\n')
    events = tmp_path / "events.csv"
    events.write_text(EVENTS_CSV)
    bad_mapping = cli("ingest", "interactions", str(events), "--mapping", str(mapping))
    assert bad_mapping.exit_code == 2 and "no_such_key" in bad_mapping.stderr
    nowhere = cli("datasets", "synthetic", "--events", "10")
    assert nowhere.exit_code == 2 and "--out" in nowhere.stderr


def test_mapping_file_and_default_event_type(cli, tmp_path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('user_id = "user"\nitem_id = "item"\ntimestamp = "when"\n')
    data = tmp_path / "plays.csv"
    data.write_text("user,item,when\nu1,a,1700000000\nu2,b,1700000001\n")
    result = cli(
        "ingest", "interactions", str(data), "--mapping", str(mapping), "--event-type", "start"
    )
    assert result.exit_code == 0, result.output
    assert _stats(cli)["event_types"] == {"start": 2}


def test_synthetic_dataset_out_and_ingest(cli, tmp_path) -> None:
    out = tmp_path / "synthetic"
    result = cli(
        "datasets",
        "synthetic",
        "--users",
        "50",
        "--items",
        "20",
        "--events",
        "300",
        "--out",
        str(out),
        "--ingest",
    )
    assert result.exit_code == 0, result.output
    assert (out / "interactions.parquet").exists()
    stats = _stats(cli)
    assert (stats["users"], stats["items"], stats["interactions"]) == (50, 20, 300)
    reload = cli("ingest", "interactions", str(out / "interactions.parquet"))
    assert "inserted 0 · duplicates 300" in reload.stdout


def test_global_home_option(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RECSTACK_DATABASE_URL", raising=False)
    monkeypatch.setenv("RECSTACK_HOME", str(tmp_path / "ignored"))
    home = tmp_path / "elsewhere"
    result = CliRunner().invoke(app, ["--home", str(home), "init"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert (home / "recstack.db").exists()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["init"],
        ["stats"],
        ["ingest"],
        ["ingest", "movielens"],
        ["ingest", "interactions"],
        ["ingest", "items"],
        ["ingest", "users"],
        ["ingest", "amazon"],
        ["datasets"],
        ["datasets", "synthetic"],
    ],
)
def test_every_command_has_help(command) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 200


def test_unreachable_database_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RECSTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RECSTACK_DATABASE_URL", "postgresql://postgres:pw@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["stats", "--json"])
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open the store")
    assert "***" in result.stderr and ":pw@" not in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
