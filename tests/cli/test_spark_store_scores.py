"""``recstack spark store-scores``: existing top-k Parquet into the store, without Spark."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.store import Store


def test_store_scores_loads_a_directory_and_reports_bad_rows(settings, monkeypatch, tmp_path):
    for var in ("RECSTACK_DATABASE_URL", "RECSTACK_MLFLOW_TRACKING_URI", "RECSTACK_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECSTACK_HOME", str(settings.home))
    scores = tmp_path / "scores"
    scores.mkdir()
    frame = pd.DataFrame(
        {"user_id": ["u1", "u1", "u2"], "rank": [1, 2, 1], "item_id": ["a", "b", "a"],
         "score": [0.9, 0.4, 0.7]}
    )  # fmt: skip
    frame.to_parquet(scores / "part-0.parquet")
    runner = CliRunner()
    result = runner.invoke(app, ["spark", "store-scores", str(scores), "--set-name", "daily"])
    assert result.exit_code == 0, result.output
    assert "stored list set 'daily' (generation 1, 2 users, 3 rows)" in result.output
    with Store.from_settings(settings) as store:
        lists = store.precomputed.load("daily")
        assert lists.users.ids.tolist() == ["u1", "u2"]
        assert lists.items.externals(lists.item_idx) == ["a", "b", "a"]

    frame.assign(score=[0.9, None, 0.7]).to_parquet(scores / "part-0.parquet")
    bad = runner.invoke(app, ["spark", "store-scores", str(scores), "--set-name", "daily"])
    assert bad.exit_code != 0
    assert "part-0.parquet:2: score is missing" in bad.output
    with Store.from_settings(settings) as store:
        assert store.precomputed.get("daily").generation == 1  # the old set stays
