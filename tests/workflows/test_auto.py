"""``--model auto``: every family's defaults scored, the best kept, the choice recorded."""

from __future__ import annotations

import pytest

from recstack.data.splits import stratified_split
from recstack.errors import ConfigError
from recstack.evaluation.protocol import holdout_metrics
from recstack.models.catalog import create_model
from recstack.registry import ModelRegistry
from recstack.settings import Settings
from recstack.testing.data import planted_dataset
from recstack.workflows.auto import (
    FAMILIES,
    STACKED,
    auto_select,
    candidate_families,
    judge_split,
)
from recstack.workflows.train import train_and_register


def test_auto_select_scores_defaults_and_keeps_the_best() -> None:
    data = planted_dataset(n_users=150, n_items=60, per_user=12, seed=4)
    choice = auto_select(data, budget_seconds=4.0, seed=1, stack=False)
    defaults = [c for c in choice.candidates if not c.tuned]
    assert sorted(c.model for c in defaults) == sorted(FAMILIES)
    # one finalist per family, its best configuration on the tuning split
    assert sorted(c.model for c in choice.finalists) == sorted(FAMILIES)
    for f in choice.finalists:
        tried = [c for c in choice.candidates if c.model == f.model]
        assert f.params == max(tried, key=lambda c: c.score).params
    assert choice.score == max(c.score for c in choice.finalists)
    assert (choice.model, choice.params) == (choice.finalists[0].model, choice.finalists[0].params)
    # the reported score is what the chosen params give on the judging split, not the tuning one
    train, valid = judge_split(data, seed=1)
    _, tuning_valid = stratified_split(data, ratio=0.8, seed=1)
    pairs = lambda d: set(zip(d.user_idx.tolist(), d.item_idx.tolist(), strict=True))  # noqa: E731
    assert pairs(valid) != pairs(tuning_valid)
    again = holdout_metrics(create_model(choice.model, **choice.params).fit(train), train, valid)
    assert again["ndcg"] == pytest.approx(choice.score, rel=1e-6)
    tags = choice.summary()
    assert tags["recstack.auto.choice"] == choice.model
    assert {tags[f"recstack.auto.{f.model}_ndcg"] for f in choice.finalists} == {
        f"{f.score:.4f}" for f in choice.finalists
    }


def test_auto_keeps_the_defaults_when_two_trials_do_not_fit_the_budget() -> None:
    data = planted_dataset(n_users=150, n_items=60, per_user=12, seed=4)
    choice = auto_select(data, budget_seconds=1e-3, seed=1)  # spent on scoring the defaults
    assert sorted(c.model for c in choice.candidates) == sorted(FAMILIES)
    assert not any(c.tuned for c in choice.candidates + choice.finalists)
    assert choice.score == max(c.score for c in choice.finalists)


def test_auto_stacks_two_stage_over_the_best_configuration_of_each_family(monkeypatch) -> None:
    import json

    pytest.importorskip("lightgbm")
    from recstack.workflows import auto

    # no tuning: the budget then holds two_stage however long the defaults took on a busy machine
    monkeypatch.setattr(auto, "_tune_for", lambda *a, **k: (None, float("-inf")))
    data = planted_dataset(n_users=150, n_items=60, per_user=12, seed=4)
    choice = auto_select(data, budget_seconds=60.0, seed=1)
    [stacked] = [c for c in choice.finalists if c.model == STACKED]
    retrievers = [c for c in choice.finalists if c.model != STACKED]
    order = [c.model for c in sorted(retrievers, key=lambda c: -c.score)]
    assert stacked.params["retrievers"] == ",".join(order)
    assert json.loads(stacked.params["retriever_params"]) == {c.model: c.params for c in retrievers}
    train, valid = judge_split(data, seed=1)
    again = holdout_metrics(create_model(STACKED, **stacked.params).fit(train), train, valid)
    assert again["ndcg"] == pytest.approx(stacked.score, rel=1e-6)
    assert choice.score == max(c.score for c in choice.finalists)


def test_tune_refuses_a_timeout_shorter_than_one_expected_trial() -> None:
    from recstack.workflows.tune import tune

    data = planted_dataset(n_users=40, n_items=20, per_user=5, seed=1)
    with pytest.raises(ValueError, match="no trial fits"):
        tune(data, "itemknn", trials=5, timeout=1.0, trial_seconds=2.0)
    best, value, study = tune(data, "itemknn", trials=3, timeout=60.0, trial_seconds=0.5)
    assert len(study.trials) == 3 and 0.0 <= value <= 1.0


def test_auto_refuses_a_budget_that_is_not_positive() -> None:
    with pytest.raises(ConfigError, match="budget_seconds must be positive"):
        auto_select(planted_dataset(n_users=20, n_items=10, per_user=3), budget_seconds=0)


def test_candidate_families_keep_what_fits_and_refuse_none() -> None:
    data = planted_dataset(n_users=20, n_items=10, per_user=3)
    assert candidate_families(data) == list(FAMILIES)
    with pytest.raises(ConfigError, match="no model family"):
        candidate_families(data, families=())


def test_train_auto_registers_the_chosen_family(settings: Settings) -> None:
    version = train_and_register(settings, "auto", auto_budget=3.0, promote="champion")
    assert version.model in (*FAMILIES, STACKED)
    assert version.aliases == ["champion"]
    run = ModelRegistry(settings).client.get_run(version.run_id)
    assert run.data.tags["recstack.auto.choice"] == version.model
    assert 0.0 < version.metrics["ndcg_at_10"] <= 1.0
