"""Drift, gated retraining, rollback and model cards on a real store and MLflow registry."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from recstack.cli.app import _register, app
from recstack.data.loaders import LoadedData
from recstack.errors import ConfigError, ConflictError, DataError, NotFoundError
from recstack.models.catalog import create_model
from recstack.registry.cards import read_model_card, run_tags
from recstack.registry.mlflow_registry import ModelRegistry
from recstack.settings import Settings, get_settings
from recstack.store import Store
from recstack.store import jobs as locks
from recstack.testing.scenarios import World, window_frame
from recstack.workflows.monitor import get_drift_report, run_drift
from recstack.workflows.retrain import list_decisions, run_retrain
from recstack.workflows.rollback import run_rollback
from recstack.workflows.train import train_and_register

WORLD = World(n_users=300, n_items=150, n_new_items=40)
ALS = {"factors": 16, "iterations": 10, "random_state": 0}
DAY = 86_400
T0 = 1_700_000_000
# 300 users leave a small holdout: P@1 and timings on a shared machine are noisy, so these
# runs with loose guardrails (the guardrails themselves are tested in tests/monitoring)
GATE = {"holdout_share": 0.25, "precision_at_1_tolerance": 0.5, "latency_tolerance": 10.0}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A store with one day of steady events and an ALS champion trained on it."""
    settings = Settings(home=tmp_path / "home")
    monkeypatch.setenv("RECSTACK_HOME", str(settings.home))
    monkeypatch.delenv("RECSTACK_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECSTACK_REDIS_URL", raising=False)
    get_settings.cache_clear()
    settings.ensure_home()
    store = Store.from_settings(settings)
    old = window_frame(WORLD, start=T0, seed=1, prefix="a")
    store.ingest(LoadedData(interactions=old, items=WORLD.items_frame(), source="old"))
    train_and_register(settings, "als", ALS, evaluate=False, promote="champion")
    yield settings, store
    store.close()
    get_settings.cache_clear()


def add_drifted(store: Store, day: int = 3, seed: int = 3) -> None:
    store.add_events(
        window_frame(
            WORLD, start=T0 + day * DAY, seed=seed, prefix=f"d{day}", shift=True, new_item_share=0.3
        )
    )


def shuffled_factors(family, params, dataset):
    """A degraded challenger: fitted, then its item vectors dealt to the wrong items."""
    model = create_model(family, **params).fit(dataset)
    order = np.random.default_rng(0).permutation(len(model.item_factors))
    model.item_factors = np.ascontiguousarray(model.item_factors[order])
    return model


def test_drift_is_flagged_for_a_shift_not_for_a_steady_stream(home) -> None:
    settings, store = home
    store.add_events(window_frame(WORLD, start=T0 + DAY, seed=2, prefix="s"))
    steady = run_drift(settings, store=store)
    assert not steady.drifted and steady.share < 0.5
    assert steady.reference["events"] == 300 * 12 and steady.current["events"] == 300 * 12
    assert steady.model["version"] == 1

    add_drifted(store)
    _register()
    out = CliRunner().invoke(app, ["monitor", "drift", "--json", "--set", "current_days=1"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert list(body)[:4] == ["id", "drifted", "share", "signals"]
    assert body["drifted"] is True and body["share"] >= 0.5
    drifted = {s["name"] for s in body["signals"] if s["drifted"]}
    assert {"item_popularity", "new_items", "consumed_popularity"} <= drifted
    report, page = get_drift_report(settings, body["id"])
    assert report.to_dict() == body and "new_items" in page and page.startswith("<!doctype")

    bad = CliRunner().invoke(app, ["monitor", "drift", "--set", "share=2"])
    assert bad.exit_code == 2 and "invalid DriftConfig: share" in bad.output


def test_drift_needs_events_after_the_champion(home) -> None:
    settings, store = home
    with pytest.raises(DataError, match="0 event\\(s\\) after the champion's training window"):
        run_drift(settings, store=store)
    with pytest.raises(ConfigError, match="p_value"):
        run_drift(settings, store=store, config={"p_value": 0})


def test_promote_a_better_challenger_refuse_a_degraded_one_then_roll_back(home) -> None:
    settings, store = home
    registry = ModelRegistry(settings)
    add_drifted(store)
    report = run_drift(settings, store=store)
    assert report.drifted

    promoted = run_retrain(
        settings, store=store, config=GATE, reason="drift", drift_report_id=report.id
    )
    assert promoted.promoted, promoted.reason
    assert promoted.challenger["metrics"]["ndcg"] > promoted.champion["metrics"]["ndcg"]
    assert promoted.aliases == {"champion": 2, "previous": 1}
    assert registry.resolve(settings.model_name, "champion").version == 2
    assert registry.resolve(settings.model_name, "previous").version == 1
    assert "no RECSTACK_REDIS_URL" in promoted.notified
    window = promoted.data_window
    assert window["champion"]["end"] < window["challenger"]["window_end"]
    assert promoted.holdout["users_scored"] >= 5
    assert {c["metric"] for c in promoted.checks} == {
        "ndcg",
        "coverage",
        "precision_at_1",
        "latency_ms",
    }
    card = read_model_card(settings)  # the champion's card
    assert "Promoted: promoted: ndcg" in card and f"Drift report `{report.id}`" in card
    assert "## Popularity bias and coverage" in card and "Window: 2023-11-" in card
    assert "temporal holdout" in card

    add_drifted(store, day=5, seed=5)  # more of the new world, then a broken challenger
    refused = run_retrain(settings, store=store, fit=shuffled_factors, config=GATE)
    assert not refused.promoted and refused.reason.startswith("refused: ndcg")
    assert refused.challenger["version"] == 3 and refused.champion["version"] == 2
    assert registry.resolve(settings.model_name, "champion").version == 2
    assert refused.notified == "" and refused.aliases == {}
    kept = registry.get_version(settings.model_name, 3)  # registered, with its reason
    tags = run_tags(registry, kept)
    assert tags["recstack.gate.promoted"] == "false"
    assert tags["recstack.gate.reason"] == refused.reason
    assert json.loads(tags["recstack.gate.decision"])["champion_version"] == 2
    assert "Refused: refused: ndcg" in read_model_card(settings, version=3)

    records = list_decisions(settings, store=store)
    assert [r["promoted"] for r in records] == [False, True]
    assert records[1]["drift_report_id"] == report.id
    assert records[0]["thresholds"]["holdout_share"] == 0.25
    assert records[0]["champion"]["metrics"] and records[0]["challenger"]["metrics"]

    _register()
    card = CliRunner().invoke(app, ["monitor", "card", "3"])
    assert card.exit_code == 0 and card.stdout.startswith("# Model card: recstack version 3")
    listed = CliRunner().invoke(app, ["monitor", "decisions", "--json"])
    assert [d["id"] for d in json.loads(listed.stdout)["decisions"]] == [r["id"] for r in records]
    table = CliRunner().invoke(app, ["monitor", "reports"])
    assert table.exit_code == 0 and report.id in table.stdout
    out = CliRunner().invoke(app, ["rollback", "--json"])
    assert out.exit_code == 0, out.output
    rolled = json.loads(out.stdout)
    assert rolled["action"] == "rollback" and rolled["aliases"] == {"champion": 1, "previous": 2}
    assert registry.resolve(settings.model_name, "champion").version == 1
    back = run_rollback(settings, store=store)  # a second rollback undoes the first
    assert back.aliases == {"champion": 2, "previous": 1}
    assert [r["action"] for r in list_decisions(settings, store=store)][:2] == [
        "rollback",
        "rollback",
    ]


def test_retrain_needs_new_events_and_a_champion(home, tmp_path) -> None:
    settings, store = home
    with pytest.raises(DataError, match="after the champion's training window"):
        run_retrain(settings, store=store, config=GATE)
    with pytest.raises(NotFoundError, match="no 'previous' version"):
        run_rollback(settings, store=store)
    empty = Settings(home=tmp_path / "other")
    with pytest.raises(NotFoundError, match="has no champion to monitor or challenge"):
        run_retrain(empty)


def test_one_retrain_at_a_time_and_bad_input_changes_nothing(home) -> None:
    settings, store = home
    registry = ModelRegistry(settings)
    add_drifted(store)
    before = len(registry.list_versions(settings.model_name))

    with pytest.raises(ConfigError, match="invalid GateConfig: margin"):
        run_retrain(settings, store=store, config={"margin": 3})

    started, release = threading.Event(), threading.Event()
    results: list[object] = []

    def slow_fit(family, params, dataset):
        started.set()
        release.wait(60)
        return create_model(family, **params).fit(dataset)

    worker = threading.Thread(
        target=lambda: results.append(
            run_retrain(settings, config={**GATE, "margin": 1.0}, fit=slow_fit)
        )
    )
    worker.start()
    assert started.wait(60)
    with pytest.raises(ConflictError, match="a retrain is already running"):
        run_retrain(settings, store=store, config=GATE)
    _register()
    out = CliRunner().invoke(app, ["retrain"])
    assert out.exit_code == 1 and "a retrain is already running" in out.output
    release.set()
    worker.join(120)
    assert len(results) == 1 and not results[0].promoted  # margin 1.0 cannot be met
    assert len(registry.list_versions(settings.model_name)) == before + 1
    assert len(list_decisions(settings, store=store)) == 1
    assert locks.lock_holder(store.engine, "retrain") is None  # released


def test_a_passing_challenger_can_start_an_ab_test_instead_of_taking_the_alias(home) -> None:
    settings, store = home
    add_drifted(store)
    decision = run_retrain(settings, store=store, config={**GATE, "on_pass": "experiment"})
    assert not decision.promoted and decision.aliases == {}
    assert decision.experiment == "retrain-recstack-v2"
    assert "A/B experiment 'retrain-recstack-v2' started instead" in decision.reason
    assert ModelRegistry(settings).resolve(settings.model_name, "champion").version == 1
    experiment = store.experiments.get("retrain-recstack-v2")
    assert experiment["status"] == "running"
    assert [(a["name"], a["model"]) for a in experiment["arms"]] == [
        ("champion", settings.serving_alias),
        ("challenger", "recstack:2"),
    ]
    assert list_decisions(settings, store=store)[0]["experiment"] == "retrain-recstack-v2"


def test_an_auto_challenger_may_change_family(home) -> None:
    settings, store = home
    add_drifted(store)
    config = {**GATE, "challenger": "auto", "auto_budget_seconds": 2.0}
    decision = run_retrain(settings, store=store, config=config)
    assert decision.challenger["model"] in {"ease", "als", "itemknn", "two_stage"}
    assert decision.challenger["version"] == 2


def test_a_retrain_that_breaks_leaves_a_failure_record(home) -> None:
    settings, store = home
    add_drifted(store)

    def broken(family, params, dataset):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_retrain(settings, store=store, fit=broken, config=GATE)
    record = list_decisions(settings, store=store)[0]
    assert not record["promoted"] and record["reason"] == "failed: RuntimeError: out of memory"
    assert ModelRegistry(settings).resolve(settings.model_name, "champion").version == 1
    assert locks.lock_holder(store.engine, "retrain") is None  # the lock is released
