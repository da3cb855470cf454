"""``recstack train --model two_stage --promote champion``: one MLflow version with its
retrievers, loaded back and served like any model."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.registry import ModelRegistry
from recstack.serving.runtime.loader import compiled_root, load_registered
from recstack.workflows.dataset import load_dataset

pytest.importorskip("lightgbm")


def test_cli_trains_registers_and_promotes_two_stage(settings, monkeypatch, tmp_path):
    for var in ("RECSTACK_DATABASE_URL", "RECSTACK_MLFLOW_TRACKING_URI", "RECSTACK_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECSTACK_HOME", str(settings.home))
    monkeypatch.setenv("RECSTACK_MODEL_NAME", settings.model_name)
    config = tmp_path / "two_stage.toml"
    config.write_text(
        '[model]\nname = "two_stage"\n\n[params]\nretrievers = "ease,als,itemknn"\n'
        "rounds = 30\nfolds = 1\ncandidates = 20\n"
    )
    result = CliRunner().invoke(
        app, ["train", "--config", str(config), "--promote", "champion"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    registry = ModelRegistry(settings)
    champion = registry.resolve(settings.model_name, "champion")
    assert champion.model == "two_stage"
    assert 0.0 < champion.metrics["ndcg_at_10"] <= 1.0
    model = registry.load(settings.model_name, version=champion.version)
    assert model.name == "two_stage"
    assert [r.name for r in model.retrievers] == ["ease", "als", "itemknn"]
    saved, _ = registry.fetch(settings.model_name, version=champion.version)
    assert (saved / "reranker.txt").read_text().startswith("tree")
    assert (saved / "retrievers" / "als" / "model.json").exists()
    data = load_dataset(settings)
    idx, _ = model.recommend(data.matrix[:3], 5, users=np.arange(3))
    assert idx.shape == (3, 5) and not np.isin(idx[0], data.matrix[0].indices).any()
    # promotion compiled the reranker for serving; a serving load picks that code up
    code = list(compiled_root(settings).glob("*.o"))
    assert len(code) == 1
    served, info = load_registered(settings, settings.model_name)
    assert info.version == champion.version
    deadline = time.monotonic() + 60
    while served._compiled is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served._compiled is not None
    assert list(compiled_root(settings).glob("*.o")) == code
    np.testing.assert_allclose(
        served.score(data.matrix[:3], np.arange(3)),
        model.score(data.matrix[:3], np.arange(3)),
        rtol=1e-6,
        atol=1e-6,
    )
