"""What one host's workers share without Redis: per-user generations and change messages."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from fastapi.testclient import TestClient

from recstack.serving.runtime.broadcast import FileBroadcast
from recstack.serving.runtime.cache import InProcessCache, user_hash
from recstack.serving.runtime.generations import (
    GENERATIONS_FILE,
    SLOTS,
    LocalGenerations,
    SharedGenerations,
)


def test_local_generations_count_and_forget() -> None:
    g = LocalGenerations()
    assert g.bump(["a", "b", "a"]) == [(0, 1), (0, 2), (1, 3)]
    assert (g.clock(), g.get("a"), g.get("b"), g.get("c")) == (3, 3, 2, 0)
    g.drop("a")
    assert g.get("a") == 0 and not g.holds("a") and g.holds("b")


def _bump_in_child(path: str, user_hash_: str) -> None:
    SharedGenerations(path).bump([user_hash_])


def test_shared_generations_are_seen_by_another_process(tmp_path) -> None:
    path = SharedGenerations.create(tmp_path / "g.bin")
    assert path.stat().st_size == (SLOTS + 1) * 8
    mine = SharedGenerations(path)
    uh = user_hash("u1")
    assert (mine.clock(), mine.get(uh)) == (0, 0)
    child = multiprocessing.get_context("spawn").Process(target=_bump_in_child, args=(path, uh))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert (mine.clock(), mine.get(uh)) == (1, 1)  # the other process's change, seen here
    assert mine.bump([uh, user_hash("u2")]) == [(1, 2), (0, 3)]
    assert SharedGenerations(path).get(user_hash("u2")) == 3
    mine.drop(uh)  # a purge is a change the other workers must see
    assert mine.get(uh) == 4 and not mine.holds(uh)
    with pytest.raises(FileNotFoundError, match="not a generations file"):
        SharedGenerations(tmp_path / "missing.bin")


def test_two_caches_on_one_file_share_changes_but_not_entries(tmp_path) -> None:
    path = SharedGenerations.create(tmp_path / "g.bin")
    a = InProcessCache(60, generations=SharedGenerations(path))
    b = InProcessCache(60, generations=SharedGenerations(path))
    generation, _ = b.lookup("u1", "v")
    b.store("u1", generation, "v", {"items": []})
    assert b.lookup("u1", "v")[1] == {"items": []}
    previous, new = a.invalidate("u1")
    assert (previous, new) == (0, 1)
    assert b.lookup("u1", "v") == (1, None)  # B's entry is stale after A's change
    assert b.clock() == 1


def test_file_broadcast_delivers_other_workers_messages_in_order(tmp_path) -> None:
    FileBroadcast.create(tmp_path)
    a, b = FileBroadcast(tmp_path), FileBroadcast(tmp_path)
    got_a: list[dict] = []
    got_b: list[dict] = []
    a.publish("item", item="i1")
    b.publish("purge", user="u1")
    a.publish("reload")
    assert b.poll(got_b.append) == 2 and a.poll(got_a.append) == 1  # not one's own
    assert [(m["kind"], m.get("item")) for m in got_b] == [("item", "i1"), ("reload", None)]
    assert [(m["kind"], m["user"]) for m in got_a] == [("purge", "u1")]
    assert b.poll(got_b.append) == 0  # nothing new
    late = FileBroadcast(tmp_path)  # a worker starting now: what came before is in its load
    assert late.poll(got_b.append) == 0
    a.publish("huge", text="x" * 2000)  # cannot be shared: dropped and logged, not half-written
    assert late.poll(got_b.append) == 0
    for n in range(4097):  # the ring holds 4096: a worker this far behind must reload
        a.publish("item", item=f"i{n}")
    lapped: list[dict] = []
    assert b.poll(lapped.append) == 1 and lapped[0]["kind"] == "reload"
    for worker in (a, b, late):
        worker.stop()
    with pytest.raises(FileNotFoundError, match="not a broadcast file"):
        FileBroadcast(tmp_path / "elsewhere")


def test_changes_posted_to_one_worker_reach_the_other_without_redis(
    serve, second_worker, als_model, tmp_path
) -> None:
    shared = tmp_path / "workers"
    shared.mkdir()
    SharedGenerations.create(shared / GENERATIONS_FILE)
    FileBroadcast.create(shared)
    with serve(als_model, worker_state_dir=shared) as a:
        with second_worker(a, als_model) as (b, engine_b):
            read = a.headers()

            def ids(client: TestClient, user: str) -> list[str]:
                response = client.get(f"/v1/users/{user}/recommendations?k=10", headers=read)
                assert response.status_code == 200, response.text
                return [item["item_id"] for item in response.json()["items"]]

            before = ids(b, "u32")
            posted = {"user_id": "u32", "item_id": before[0]}
            assert a.client.post("/v1/events", json=posted, headers=a.headers("write")).is_success
            assert before[0] not in ids(b, "u32")  # B re-read the user A changed

            assert engine_b.history("u33")
            assert a.client.delete("/v1/users/u33", headers=a.headers("write")).is_success
            ids(b, "u33")  # B's next request for the purged user finds them gone
            assert engine_b.history("u33") == [] and not engine_b.known_to_model("u33")

            put = {"title": "Shared", "attributes": {"genres": ["topic1"]}}
            assert a.client.put(
                "/v1/items/shared-1", json=put, headers=a.headers("write")
            ).is_success
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not engine_b.has_item("shared-1"):
                time.sleep(0.05)
            assert engine_b.has_item("shared-1")  # B's listener applied A's upsert
            assert b.get("/v1/items/shared-1/similar?k=2", headers=read).status_code == 200
