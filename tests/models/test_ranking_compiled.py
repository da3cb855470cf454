"""The reranker compiled to machine code scores exactly as the booster, and is cached once."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from recstack.testing.contract import holdout_split
from recstack.testing.data import planted_dataset

pytest.importorskip("lightgbm")

from recstack.models.ranking.compiled import cache_key, compile_predictor  # noqa: E402
from recstack.models.ranking.two_stage import TwoStageRecommender  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return holdout_split(planted_dataset())


@pytest.mark.parametrize("objective", ["lambdarank", "binary"])
def test_compiled_scores_equal_the_boosters_nan_features_included(data, tmp_path, objective):
    train, _ = data
    model = TwoStageRecommender(
        retrievers="ease,itemknn", candidates=20, rounds=25, folds=1, objective=objective
    ).fit(train)
    users = np.arange(30)
    _, features = model.rank_features(train.matrix[:1], users[:1], np.arange(train.n_items))
    features[::7, 3] = np.nan  # a missing value takes each split's default direction
    predict = compile_predictor(model.booster.model_to_string(), tmp_path)
    assert predict is not None
    np.testing.assert_allclose(
        predict(features), model.booster.predict(features, num_threads=1), rtol=1e-6, atol=1e-7
    )
    before = model.score(train.matrix[users], users)
    model.compile_scoring(tmp_path)
    after = model.score(train.matrix[users], users)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
    assert (np.argsort(-after, axis=1)[:, :10] == np.argsort(-before, axis=1)[:, :10]).mean() > 0.99


def test_code_is_compiled_once_per_model_and_then_loaded(data, tmp_path):
    train, _ = data
    model = TwoStageRecommender(retrievers="ease,itemknn", candidates=10, rounds=5, folds=1)
    text = model.fit(train).booster.model_to_string()
    assert compile_predictor(text, tmp_path) is not None
    code = tmp_path / f"{cache_key(text)}.o"
    stamp = code.stat().st_mtime_ns
    assert compile_predictor(text, tmp_path) is not None
    assert code.stat().st_mtime_ns == stamp  # loaded, not compiled again
    assert cache_key(text) != cache_key(text + "\n")
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".lock", ".o", ".txt"]


def test_an_unwritable_cache_leaves_the_booster_predicting(data, tmp_path, caplog):
    train, _ = data
    model = TwoStageRecommender(retrievers="ease,itemknn", candidates=10, rounds=5, folds=1)
    model.fit(train)
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert compile_predictor(model.booster.model_to_string(), blocked) is None
    assert "not compiled" in caplog.text
    users = np.arange(5)
    before = model.score(train.matrix[users], users)
    model.compile_scoring(blocked)
    np.testing.assert_array_equal(model.score(train.matrix[users], users), before)


def test_background_compilation_switches_when_ready_and_refit_drops_it(data, tmp_path):
    train, _ = data
    model = TwoStageRecommender(retrievers="ease,itemknn", candidates=10, rounds=5, folds=1)
    model.fit(train)
    model.compile_scoring(tmp_path, background=True)
    deadline = time.monotonic() + 120
    while model._compiled is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model._compiled is not None
    model.fit(train)  # a new booster: the old code must not score it
    assert model._compiled is None


def test_code_no_model_loaded_for_a_month_is_pruned_when_another_loads(data, tmp_path):
    train, _ = data
    texts = [
        TwoStageRecommender(retrievers="ease,itemknn", candidates=10, rounds=r, folds=1)
        .fit(train)
        .booster.model_to_string()
        for r in (3, 4, 5)
    ]
    old, recent, new = (cache_key(t) for t in texts)
    for text in texts[:2]:
        assert compile_predictor(text, tmp_path) is not None
    month = time.time() - 31 * 86_400
    for key in (old, recent):
        os.utime(tmp_path / f"{key}.txt", (month, month))
    assert compile_predictor(texts[1], tmp_path) is not None  # marks ``recent`` used
    assert compile_predictor(texts[2], tmp_path) is not None
    left = {p.name for p in tmp_path.iterdir()}
    assert {f"{old}.o", f"{old}.txt"}.isdisjoint(left)
    assert {f"{k}{s}" for k in (recent, new) for s in (".o", ".txt")} <= left
    assert f"{old}.lock" in left  # a worker may be waiting on it


def test_prune_leaves_a_key_whose_lock_is_held(tmp_path):
    import fcntl

    from recstack.models.ranking.compiled import prune

    for key in ("busy", "idle"):
        for suffix in (".o", ".txt"):
            (tmp_path / f"{key}{suffix}").write_bytes(b"x")
            os.utime(tmp_path / f"{key}{suffix}", (0, 0))
    with open(tmp_path / "busy.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert prune(tmp_path, keep="other") == ["idle"]
    assert (tmp_path / "busy.o").exists() and not (tmp_path / "idle.o").exists()
