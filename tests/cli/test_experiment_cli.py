"""``recstack experiments``: the same lifecycle and refusals as the API, as exit statuses."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recstack.cli.app import app


def run(home, *args):
    return CliRunner().invoke(app, ["--home", str(home), "experiments", *args])


def test_create_list_start_ramp_stop_and_results(tmp_path):
    home = tmp_path / "home"
    arms = ["--arm", "a=popularity:0.5", "--arm", "b=popularity:0.5"]
    created = run(home, "create", "--key", "cli", "--traffic", "0.1", *arms)
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["status"] == "draft"
    assert run(home, "create", "--key", "cli", *arms).exit_code == 1  # duplicate key
    bad = run(
        home, "create", "--key", "w", "--arm", "a=popularity:0.5", "--arm", "b=popularity:0.6"
    )
    assert bad.exit_code == 2 and "weights must sum to 1" in bad.output
    unknown = run(home, "create", "--key", "m", "--arm", "a=popularity:0.5", "--arm", "b=x:9:0.5")
    assert unknown.exit_code == 2 and "unknown model 'x:9'" in unknown.output
    assert json.loads(run(home, "start", "cli").output)["bucket_start"] == 0
    ramped = run(home, "ramp", "cli", "--traffic", "0.5")
    assert ramped.exit_code == 0 and json.loads(ramped.output)["traffic"] == 0.5
    assert run(home, "ramp", "cli", "--traffic", "0.2").exit_code == 2  # only up
    listed = json.loads(run(home, "list", "--json").output)
    assert [(e["key"], e["status"]) for e in listed] == [("cli", "running")]
    results = run(home, "results", "cli", "--html", str(tmp_path / "r.html"))
    assert results.exit_code == 0, results.output
    assert json.loads(results.output)["decision"]["action"] == "keep running"
    assert "Experiment cli" in (tmp_path / "r.html").read_text()
    assert json.loads(run(home, "stop", "cli").output)["status"] == "stopped"
    again = run(home, "start", "cli")
    assert again.exit_code == 1 and "stopped" in again.output


def test_simulate_rehearses_an_ab_on_the_stores_data(tmp_path):
    from recstack.data.loaders import LoadedData
    from recstack.settings import Settings
    from recstack.store import Store
    from recstack.testing.data import planted_frame

    home = tmp_path / "home"
    store = Store.from_settings(Settings(home=home))
    inter, items = planted_frame()
    store.ingest(LoadedData(interactions=inter, items=items, source="planted"))
    store.close()
    result = run(home, "simulate", "--arm", "pop=popularity", "--arm", "knn=itemknn",
                 "--users", "400")  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output[result.output.index("{") :])
    assert body["arms"]["pop"]["users"] + body["arms"]["knn"]["users"] == 400
    assert body["comparisons"][0]["arm"] == "knn"
    # planted topics: item-kNN finds each user's held-out topic, popularity does not
    assert body["comparisons"][0]["lift"] > 0
    bad = run(home, "simulate", "--arm", "a=popularity", "--arm", "b=nope")
    assert bad.exit_code == 2 and "unknown model" in bad.output
