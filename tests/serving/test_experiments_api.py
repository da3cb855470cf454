"""Experiments over HTTP: lifecycle, arm routing by slot, exposures, outcomes and results."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recstack.experiments.assignment import assign
from recstack.experiments.config import Experiment
from recstack.serving.api.app import create_app
from recstack.serving.runtime.broadcast import FileBroadcast
from recstack.serving.runtime.experiments import runtime_of
from recstack.serving.runtime.generations import GENERATIONS_FILE, SharedGenerations
from recstack.store import Store
from recstack.store.tables import EXPERIMENT_TABLES
from recstack.workflows.experiment_ope import ope_estimates, target_lists
from recstack.workflows.experiments import experiment_results

USERS = [f"u{n}" for n in range(60)]


@pytest.fixture(scope="module")
def registered(tmp_path_factory, planted, planted_ds):
    """A home with two registered versions: 1 ALS (champion), 2 item-kNN (challenger)."""
    from tests.serving.conftest import champion_challenger_home

    home = tmp_path_factory.mktemp("experiments") / "home"
    return champion_challenger_home(home, planted, planted_ds, ("read", "write", "admin"))


@pytest.fixture
def home(registered):
    """The registered home with no experiments, exposures or outcomes left by other tests."""
    settings, headers = registered
    store = Store.from_settings(settings)
    for table in EXPERIMENT_TABLES:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    store.close()
    return settings, headers


def definition(key: str, **extra) -> dict:
    return {
        "key": key,
        "arms": extra.pop(
            "arms",
            [
                {"name": "control", "model": "champion", "weight": 0.5},
                {"name": "treatment", "model": "challenger", "weight": 0.5},
            ],
        ),
        **extra,
    }


def served(client: TestClient, headers: dict, users=USERS, path="recommendations") -> dict:
    out = {}
    for user in users:
        response = client.get(f"/v1/users/{user}/{path}?k=5", headers=headers["read"])
        assert response.status_code == 200, response.text
        out[user] = response.json()
    return out


def test_started_experiment_routes_each_user_to_the_slot_of_their_arm(home):
    settings, headers = home
    admin = headers["admin"]
    with TestClient(create_app(settings)) as client:
        before = served(client, headers, USERS[:3])
        assert all(b["experiment"] is None and len(b["recommendation_id"]) == 32
                   for b in before.values())  # fmt: skip
        created = client.post("/v1/experiments", json=definition("ab", traffic=0.5), headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "draft"
        started = client.post("/v1/experiments/ab/start", headers=admin)
        assert started.status_code == 200, started.text
        experiment = Experiment.model_validate(started.json())
        assert experiment.status == "running" and experiment.bucket_start == 0
        bodies = served(client, headers)
        versions = {"control": 1, "treatment": 2}
        inside = 0
        for user, body in bodies.items():
            arm = assign(experiment, user)
            if arm is None:
                assert body["experiment"] is None and body["model"]["version"] == 1
            else:
                inside += 1
                assert body["experiment"] == {"key": "ab", "arm": arm}
                assert body["model"]["version"] == versions[arm]
        assert 10 < inside < 50
        slots = client.get("/v1/admin/models", headers=admin).json()["slots"]
        assert {s["name"] for s in slots} == {"champion", "ab.treatment"}
        user = next(u for u in USERS if assign(experiment, u) == "treatment")
        similar = client.get(f"/v1/items/i5/similar?k=3&user_id={user}", headers=headers["read"])
        assert similar.json()["experiment"] == {"key": "ab", "arm": "treatment"}
        assert similar.json()["model"]["version"] == 2
        listed = client.get("/v1/experiments?status=running", headers=admin).json()
        assert [e["key"] for e in listed] == ["ab"]
        assert client.post("/v1/experiments/ab/stop", headers=admin).json()["status"] == "stopped"
        after = served(client, headers, USERS[:10])
        assert all(b["experiment"] is None for b in after.values())
        assert {
            s["name"] for s in client.get("/v1/admin/models", headers=admin).json()["slots"]
        } == {"champion"}


def test_assignment_is_sticky_across_two_workers_and_a_restart(home):
    settings, headers = home
    with TestClient(create_app(settings)) as first:
        first.post("/v1/experiments", json=definition("sticky"), headers=headers["admin"])
        assert first.post("/v1/experiments/sticky/start", headers=headers["admin"]).is_success
        one = {u: b["experiment"]["arm"] for u, b in served(first, headers).items()}
        with TestClient(create_app(settings)) as second:  # another worker on the same store
            two = {u: b["experiment"]["arm"] for u, b in served(second, headers).items()}
    with TestClient(create_app(settings)) as restarted:
        three = {u: b["experiment"]["arm"] for u, b in served(restarted, headers).items()}
    assert one == two == three
    assert set(one.values()) == {"control", "treatment"}


def test_bad_input_is_a_clear_4xx_and_writes_nothing(home):
    settings, headers = home
    admin = headers["admin"]
    with TestClient(create_app(settings)) as client:
        bad_weights = definition(
            "w",
            arms=[
                {"name": "a", "model": "champion", "weight": 0.7},
                {"name": "b", "model": "challenger", "weight": 0.7},
            ],
        )
        response = client.post("/v1/experiments", json=bad_weights, headers=admin)
        assert response.status_code == 422
        assert "weights must sum to 1" in response.json()["error"]["message"]
        unknown = definition(
            "m",
            arms=[
                {"name": "a", "model": "champion", "weight": 0.5},
                {"name": "b", "model": "recstack:99", "weight": 0.5},
            ],
        )
        response = client.post("/v1/experiments", json=unknown, headers=admin)
        assert response.status_code == 422
        assert "unknown model 'recstack:99'" in response.json()["error"]["message"]
        assert client.get("/v1/experiments", headers=admin).json() == []  # nothing stored
        assert (
            client.post("/v1/experiments", json=definition("d"), headers=admin).status_code == 201
        )
        again = client.post("/v1/experiments", json=definition("d"), headers=admin)
        assert again.status_code == 409 and "exists" in again.json()["error"]["message"]
        assert client.post("/v1/experiments/d/stop", headers=admin).status_code == 200
        restart = client.post("/v1/experiments/d/start", headers=admin)
        assert restart.status_code == 409 and "stopped" in restart.json()["error"]["message"]
        assert client.get("/v1/experiments/d", headers=admin).json()["status"] == "stopped"
        assert client.post("/v1/experiments/none/start", headers=admin).status_code == 404
        assert client.get("/v1/experiments/d", headers=headers["read"]).status_code == 403
        event = {"user_id": "u1", "item_id": "i1", "event_type": "click",
                 "recommendation_id": "never-served", "event_id": "ev-unknown"}  # fmt: skip
        response = client.post("/v1/events", json=event, headers=headers["write"])
        assert response.status_code == 422
        assert "unknown recommendation_id 'never-served'" in response.json()["error"]["message"]
        store = client.app.state.recstack.store
        assert store.user_history("u1")["event_id"].tolist().count("ev-unknown") == 0


def test_exposures_are_written_off_the_request_path_and_flushed_on_shutdown(home):
    settings, headers = home
    app = create_app(settings)
    with TestClient(app) as client:
        writer = runtime_of(app.state.recstack).writer
        writer.interval = 3600.0
        time.sleep(0.3)  # the thread's current wait ends; the next one is an hour
        bodies = served(client, headers, USERS[:25])
        store = app.state.recstack.store
        assert store.exposures.count() < 25  # queued, not written by the requests
        ids = [b["recommendation_id"] for b in bodies.values()]
    reader = Store.from_settings(settings)
    try:
        found = reader.exposures.find(ids)
        assert len(found) == 25
        row = found[bodies["u3"]["recommendation_id"]]
        assert row["user_id"] == "u3" and row["surface"] == "recommendations"
        assert row["model"] == "als" and row["model_version"] == 1
        assert [i["item_id"] for i in row["items"]] == [i["item_id"] for i in bodies["u3"]["items"]]
        assert [i["position"] for i in row["items"]] == list(range(5))
    finally:
        reader.close()


def test_exposures_are_written_when_an_app_is_started_again_after_a_shutdown(home):
    """A second lifespan of the same app (test clients run one each) logs through a new
    writer: the first one's thread ended at shutdown and would never write its queue."""
    settings, headers = home
    app = create_app(settings)
    ids = []
    for _ in range(2):
        with TestClient(app) as client:
            ids += [b["recommendation_id"] for b in served(client, headers, USERS[:3]).values()]
    assert len(app.state.recstack.store.exposures.find(ids)) == 6


def test_an_event_flushes_queued_lists_only_when_one_may_be_its_exposure(home):
    """An event without a recommendation_id is credited to a list served a moment ago even
    while that list is still queued; an event of a user with nothing queued leaves the queue
    to its timer instead of forcing a write."""
    settings, headers = home
    app = create_app(settings)
    with TestClient(app) as client:
        client.post("/v1/experiments", json=definition("flush"), headers=headers["admin"])
        client.post("/v1/experiments/flush/start", headers=headers["admin"])
        writer = runtime_of(app.state.recstack).writer
        writer.interval = 3600.0
        time.sleep(0.3)  # the thread's current wait ends; the next one is an hour
        bodies = served(client, headers, USERS[:3])
        assert writer.pending == 3
        item = bodies["u1"]["items"][0]["item_id"]
        other = {"user_id": "u9", "item_id": item, "event_type": "click"}
        assert client.post("/v1/events", json=other, headers=headers["write"]).status_code == 200
        assert writer.pending == 3  # u9 has no queued list: nothing written for it
        click = {"user_id": "u1", "item_id": item, "event_type": "click"}
        assert client.post("/v1/events", json=click, headers=headers["write"]).status_code == 200
        assert writer.pending == 0
        store = app.state.recstack.store
        metrics = store.exposures.user_metrics("flush", ["click"], ["purchase"])
        clicked = metrics.set_index("user_id")["clicks"]
        assert clicked["u1"] == 1 and clicked.drop("u1").sum() == 0


def test_results_agree_with_a_hand_computed_case(home):
    settings, headers = home
    admin, write = headers["admin"], headers["write"]
    with TestClient(create_app(settings)) as client:
        arms = [
            {"name": "control", "model": "popularity", "weight": 0.5},
            {"name": "treatment", "model": "challenger", "weight": 0.5},
        ]
        client.post("/v1/experiments", json=definition("hand", arms=arms), headers=admin)
        client.post("/v1/experiments/hand/start", headers=admin)
        lists = {u: [] for u in USERS[:30]}
        for _ in range(2):
            for user, body in served(client, headers, USERS[:30]).items():
                lists[user].append(body)
        rng = np.random.default_rng(0)
        clicks = {"control": 0, "treatment": 0}
        exposures = {"control": 0, "treatment": 0}
        users = {"control": set(), "treatment": set()}
        events = []
        for user, bodies in lists.items():
            for body in bodies:
                arm = body["experiment"]["arm"]
                exposures[arm] += 1
                users[arm].add(user)
                if rng.random() < 0.5:
                    item = body["items"][int(rng.integers(len(body["items"])))]["item_id"]
                    events.append({"user_id": user, "item_id": item, "event_type": "click",
                                   "recommendation_id": body["recommendation_id"]})  # fmt: skip
                    clicks[arm] += 1
        # one click without an id: credited to the user's latest list showing the item
        last = lists["u0"][-1]
        events.append({"user_id": "u0", "item_id": last["items"][0]["item_id"],
                       "event_type": "click"})  # fmt: skip
        clicks[last["experiment"]["arm"]] += 1
        response = client.post("/v1/events", json={"events": events}, headers=write)
        assert response.status_code == 200, response.text
        results = client.get("/v1/experiments/hand/results", headers=admin)
        assert results.status_code == 200, results.text
        body = results.json()
        for arm in ("control", "treatment"):
            assert body["arms"][arm]["users"] == len(users[arm])
            assert body["arms"][arm]["exposures"] == exposures[arm]
            ctr = body["arms"][arm]["metrics"]["ctr"]
            assert ctr["value"] == pytest.approx(clicks[arm] / exposures[arm])
            assert ctr["ci"][0] < ctr["value"] < ctr["ci"][1]
        assert set(body["srm"]) >= {"p_value", "flag"}
        assert body["decision"]["action"]
        assert body["comparisons"][0]["arm"] == "treatment"
        # served through the API, the rollups agree with the raw log to the last digit
        log = experiment_results(client.app.state.recstack.store, "hand", from_log=True)
        assert json.loads(json.dumps(log, default=str)) == body
        report = client.get("/v1/experiments/hand/report", headers=admin)
        assert report.status_code == 200 and report.text.count("data:image/png;base64") >= 2


def test_interleaving_merges_both_arms_and_credits_the_contributing_arm(home):
    settings, headers = home
    admin = headers["admin"]
    with TestClient(create_app(settings)) as client:
        arms = [
            {"name": "pop", "model": "popularity", "weight": 0.5},
            {"name": "knn", "model": "challenger", "weight": 0.5},
        ]
        client.post(
            "/v1/experiments", json=definition("tdi", arms=arms, mode="interleave"), headers=admin
        )
        client.post("/v1/experiments/tdi/start", headers=admin)
        bodies = served(client, headers, USERS[:20])
        assert all(b["experiment"] == {"key": "tdi", "arm": "interleaved"} for b in bodies.values())
        runtime_of(client.app.state.recstack).writer.flush()
        store = client.app.state.recstack.store
        logged = store.exposures.find([b["recommendation_id"] for b in bodies.values()])
        teams = [i["team"] for row in logged.values() for i in row["items"]]
        assert set(teams) == {"pop", "knn"}
        events = []
        for user, body in bodies.items():
            row = logged[body["recommendation_id"]]
            pick = next(i for i in row["items"] if i["team"] == "knn")
            events.append({"user_id": user, "item_id": pick["item_id"], "event_type": "click",
                           "recommendation_id": body["recommendation_id"]})  # fmt: skip
        assert client.post(
            "/v1/events", json={"events": events}, headers=headers["write"]
        ).is_success
        result = client.get("/v1/experiments/tdi/results", headers=admin).json()
        assert result["preference"]["wins_knn"] == 20 and result["preference"]["wins_pop"] == 0
        assert result["preference"]["winner"] == "knn"


def test_exploration_logs_propensities(home):
    settings, headers = home
    admin = headers["admin"]
    with TestClient(create_app(settings)) as client:
        arms = [
            {"name": "a", "model": "champion", "weight": 0.5},
            {"name": "b", "model": "challenger", "weight": 0.5},
        ]
        exploration = {"kind": "epsilon", "epsilon": 0.5, "top_n": 20}
        client.post(
            "/v1/experiments",
            json=definition("explore", arms=arms, exploration=exploration),
            headers=admin,
        )
        client.post("/v1/experiments/explore/start", headers=admin)
        bodies = served(client, headers, USERS[:20])
        runtime_of(client.app.state.recstack).writer.flush()
        logged = client.app.state.recstack.store.exposures.find(
            [b["recommendation_id"] for b in bodies.values()]
        )
        props = [i["propensity"] for row in logged.values() for i in row["items"]]
        assert len(props) == 100
        assert set(np.round(props, 6)) <= {round(0.5 / 20, 6), round(0.5 + 0.5 / 20, 6)}
        store = client.app.state.recstack.store

        clicked: dict[str, int] = {}  # recommendation id -> the slot its user clicked

        def ranked(target: str, user: str, rid: str) -> list:  # from the history when served
            items = logged[rid]["items"]
            after = [{items[clicked[rid]]["item_id"]} if rid in clicked else set()]
            served = [logged[rid]["served_at"]]
            return target_lists(store, settings, target, [user], 5, served, after)[0]

        # each of 10 users clicks the first slot where the champion agrees with what was shown
        # (slot 0 when it agrees nowhere), so the champion's estimates have clicks to count
        events = []
        for user, body in list(bodies.items())[:10]:
            rid = body["recommendation_id"]
            mine = ranked("champion", user, rid)
            shown = [i["item_id"] for i in logged[rid]["items"]]
            slot = next((j for j in range(5) if shown[j] == mine[j]), 0)
            clicked[rid] = slot
            events.append({"user_id": user, "item_id": shown[slot], "event_type": "click",
                           "recommendation_id": rid})  # fmt: skip
        assert client.post(
            "/v1/events", json={"events": events}, headers=headers["write"]
        ).is_success
        estimates = ope_estimates(store, settings, "explore", ["champion", "popularity"])
        assert estimates["lists"] == 20 and estimates["skipped"] == 0
        assert estimates["logged_ctr_per_slot"] == pytest.approx(10 / 100)
        hits = {}
        for target in ("champion", "popularity"):
            # IPS and SNIPS by hand from what was logged and what the target ranks: a click at a
            # slot counts, weighted 1 / propensity, where the target puts the same item there
            num, den = np.zeros(5), np.zeros(5)
            for user, body in bodies.items():
                rid = body["recommendation_id"]
                mine = ranked(target, user, rid)
                for j, shown in enumerate(logged[rid]["items"]):
                    if shown["item_id"] == mine[j]:
                        den[j] += 1 / shown["propensity"]
                        num[j] += (clicked.get(rid) == j) / shown["propensity"]
            hits[target] = num.sum()
            got = estimates["targets"][target]
            assert got["ips"]["ctr_per_slot"] == pytest.approx(num.sum() / (20 * 5))
            snips = np.divide(num, den, out=np.zeros(5), where=den > 0).mean()
            assert got["snips"]["ctr_per_slot"] == pytest.approx(snips)
            assert np.isfinite(got["dr"]["ctr_per_slot"])
        assert hits["champion"] > 0  # a clicked item stays in the list of the target that showed it


def test_a_start_in_one_worker_loads_the_arms_in_the_other(home, tmp_path):
    settings, headers = home
    shared = settings.model_copy(update={"worker_state_dir": tmp_path / "shared"})
    shared.worker_state_dir.mkdir()
    SharedGenerations.create(shared.worker_state_dir / GENERATIONS_FILE)
    FileBroadcast.create(shared.worker_state_dir)
    with TestClient(create_app(shared)) as first, TestClient(create_app(shared)) as second:
        first.post("/v1/experiments", json=definition("both"), headers=headers["admin"])
        assert first.post("/v1/experiments/both/start", headers=headers["admin"]).is_success
        other = runtime_of(second.app.state.recstack)
        deadline = time.monotonic() + 5  # under REFRESH_SECONDS: the broadcast, not the poll
        while not other.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e.key for e in other.running] == ["both"]
        assert second.app.state.recstack.engine.has_slot("both.treatment")
        one = served(first, headers, USERS[:20])
        two = served(second, headers, USERS[:20])
        assert {u: b["experiment"] for u, b in one.items()} == {
            u: b["experiment"] for u, b in two.items()
        }
        assert all(one[u]["model"]["version"] == two[u]["model"]["version"] for u in USERS[:20])
