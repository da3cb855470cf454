"""``recstack evaluate | tune | train | models`` through the Typer app, on a real store + MLflow."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.data.loaders import LoadedData
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.data import planted_frame
from recstack.workflows.configs import load_config


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "home"
    inter, items = planted_frame(n_users=80, n_items=50, per_user=10)
    Store.from_settings(Settings(home=path)).ingest(LoadedData(inter, items=items))
    return path


@pytest.fixture
def run(home, monkeypatch):
    for var in ("RECSTACK_DATABASE_URL", "RECSTACK_MLFLOW_TRACKING_URI", "RECSTACK_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECSTACK_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def assert_user_error(result, message: str, code: int = 1) -> None:
    """One ``error:`` line, no traceback; 1 for bad data or state, 2 for bad usage."""
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert errors == [result.stderr.strip().splitlines()[-1]]


def test_evaluate_json_prints_one_object_and_writes_the_report(run, tmp_path):
    result = run(
        "evaluate",
        "--models",
        "popularity,itemknn",
        "--k",
        "5",
        "--json",
        "--out",
        str(tmp_path / "rep"),
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [m["name"] for m in payload["models"]] == ["popularity", "itemknn"]
    assert payload["k"] == 5 and payload["users_evaluated"] == 80
    assert (tmp_path / "rep" / "report.html").exists()
    assert payload["report"]["json"] == str(tmp_path / "rep" / "results.json")


def test_evaluate_table_and_default_report_dir(run, home):
    result = run("evaluate", "--models", "popularity", "--protocol", "leave_last")
    assert result.exit_code == 0, result.stderr
    assert "popularity" in result.stdout and "NDCG@10" in result.stdout
    assert len(list((home / "reports").glob("*/report.html"))) >= 1


def test_evaluate_errors_are_one_line(run, tmp_path):
    assert_user_error(run("evaluate", "--models", "nope"), "unknown model 'nope'", 2)
    assert_user_error(run("evaluate", "--models", "ease", "--protocol", "x"), "unknown protocol", 2)
    missing = tmp_path / "missing.toml"
    assert_user_error(run("evaluate", "--config", str(missing)), "config file not found", 2)


def test_tune_train_and_manage_versions(run, home, tmp_path):
    best = tmp_path / "best.toml"
    tuned = run("tune", "itemknn", "--trials", "2", "--out", str(best), "--json")
    assert tuned.exit_code == 0, tuned.stderr
    payload = json.loads(tuned.stdout)
    assert payload["trials"] == 2 and payload["config"] == str(best)
    name, params = load_config(best)
    assert name == "itemknn" and set(params) == {"k_neighbors", "shrink"}

    evaluated = run(
        "evaluate", "--config", str(best), "--k", "5", "--json", "--out", str(tmp_path / "e")
    )
    assert [m["name"] for m in json.loads(evaluated.stdout)["models"]] == ["itemknn"]

    first = run("train", "--config", str(best), "--promote", "champion", "--json")
    assert first.exit_code == 0, first.stderr
    v1 = json.loads(first.stdout)
    assert (v1["version"], v1["model"], v1["aliases"]) == (1, "itemknn", ["champion"])
    assert "ndcg_at_10" in v1["metrics"]
    # the served version's serving image is written from the training snapshot
    assert len(list((home / "serving-images").glob("*/meta.json"))) == 1

    second = run("train", "--model", "popularity", "--no-evaluate")
    assert second.exit_code == 0, second.stderr
    assert "registered recstack version 2" in second.stdout

    listed = json.loads(run("models", "list", "--json").stdout)["versions"]
    assert [(v["version"], v["aliases"]) for v in listed] == [(1, ["champion"]), (2, [])]
    assert "itemknn" in run("models", "list").stdout

    promoted = run("models", "promote", "recstack", "2", "--alias", "champion")
    assert promoted.exit_code == 0 and "version 2 is now champion" in promoted.stdout
    rolled = run("models", "rollback", "recstack")
    assert rolled.exit_code == 0 and "rolled back to version 1" in rolled.stdout
    assert_user_error(run("models", "rollback", "recstack"), "no previous version")
    assert_user_error(run("models", "promote", "recstack", "99"), "has no version 99")
    assert_user_error(run("models", "list", "ghost"), "no registered model named 'ghost'")


def test_train_needs_a_model(run, tmp_path):
    assert_user_error(run("train"), "name a model with --model NAME or --config FILE", 2)
    cfg = tmp_path / "ease.toml"
    cfg.write_text('[model]\nname = "ease"\n')
    assert_user_error(run("train", "--model", "als", "--config", str(cfg)), "configures 'ease'", 2)


def test_bad_params_in_a_config_name_the_valid_ones(run, tmp_path):
    cfg = tmp_path / "ease.toml"
    cfg.write_text('[model]\nname = "ease"\n[params]\nbogus = 1\n')
    for command in ("train", "evaluate"):
        result = run(command, "--config", str(cfg))
        assert_user_error(result, "ease: unknown parameter 'bogus'; valid parameters: l2", 2)
