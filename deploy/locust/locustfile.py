"""Load test of a recstack deployment: seed 003's three scenarios, against any ``--host``.

    LOCUST_SCENARIO=normal RECSTACK_API_KEY=... locust -f deploy/locust/locustfile.py \
        --headless --host https://recs.example.com

Scenarios (``LOCUST_SCENARIO``), as request rates — each simulated user sends one request a
second (``constant_throughput(1)``), so the user count is the target rate; if the service
answers slower than that, the measured rate falls short of the target and shows it:

* ``normal``: 50 req/s for 5 minutes;
* ``peak``: 150 req/s for 2 minutes;
* ``stress``: a ramp from 30 to 300 req/s, 30 more every 30 s, then 300 req/s held for 1 minute.

``LOCUST_TIME_SCALE`` (default 1) multiplies every duration: 0.2 runs ``normal`` for 60 s.

The request mix is the serving path of a product page: recommendations for a user (70%),
similar items (15%), popular items (5%) and, when ``RECSTACK_WRITE_KEY`` is set, posted view
events (10%, each with a fresh event id). Users and items are drawn from
``RECSTACK_LOAD_USER_IDS`` / ``RECSTACK_LOAD_ITEM_IDS`` (files, one id a line) or else from
the patterns ``RECSTACK_LOAD_USER_PATTERN`` (default ``u{}``) and
``RECSTACK_LOAD_ITEM_PATTERN`` (default ``c{}``) over ``RECSTACK_LOAD_USER_COUNT`` /
``RECSTACK_LOAD_ITEM_COUNT`` (default 1000 / 300) numbers; ``RECSTACK_LOAD_COLD_SHARE``
(default 0.05) of requests ask for users the service has never seen.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

from locust import HttpUser, LoadTestShape, constant_throughput, task

SCENARIOS: dict[str, list[tuple[float, int, float]]] = {
    # (stage end in seconds, users = req/s, spawn rate per second)
    "normal": [(300, 50, 10)],
    "peak": [(120, 150, 50)],
    "stress": [(30 * (n + 1), 30 * (n + 1), 30) for n in range(10)] + [(360, 300, 30)],
}


def _ids(kind: str, pattern: str, count: int) -> list[str]:
    path = os.environ.get(f"RECSTACK_LOAD_{kind}_IDS")
    if path:
        ids = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
        if not ids:
            raise ValueError(f"RECSTACK_LOAD_{kind}_IDS={path} holds no ids")
        return ids
    pattern = os.environ.get(f"RECSTACK_LOAD_{kind}_PATTERN", pattern)
    count = int(os.environ.get(f"RECSTACK_LOAD_{kind}_COUNT", count))
    return [pattern.format(n) for n in range(count)]


USERS = _ids("USER", "u{}", 1000)
ITEMS = _ids("ITEM", "c{}", 300)
COLD_SHARE = float(os.environ.get("RECSTACK_LOAD_COLD_SHARE", "0.05"))
READ_KEY = os.environ.get("RECSTACK_API_KEY", "")
WRITE_KEY = os.environ.get("RECSTACK_WRITE_KEY", "")


class RecstackUser(HttpUser):
    """One client sending about one request a second."""

    wait_time = constant_throughput(1)

    def on_start(self) -> None:
        self.read = {"Authorization": f"Bearer {READ_KEY}"} if READ_KEY else {}
        self.write = {"Authorization": f"Bearer {WRITE_KEY}"} if WRITE_KEY else {}

    def _user(self) -> str:
        if random.random() < COLD_SHARE:
            return f"load-cold-{uuid.uuid4().hex[:12]}"
        return random.choice(USERS)

    @task(70)
    def recommendations(self) -> None:
        self.client.get(
            f"/v1/users/{self._user()}/recommendations",
            params={"k": 10},
            headers=self.read,
            name="/v1/users/[user]/recommendations",
        )

    @task(15)
    def similar(self) -> None:
        self.client.get(
            f"/v1/items/{random.choice(ITEMS)}/similar",
            params={"k": 10},
            headers=self.read,
            name="/v1/items/[item]/similar",
        )

    @task(5)
    def popular(self) -> None:
        self.client.get("/v1/popular", params={"k": 10}, headers=self.read, name="/v1/popular")

    @task(10)
    def post_event(self) -> None:
        if not WRITE_KEY:
            self.recommendations()
            return
        event = {
            "event_id": f"load-{uuid.uuid4().hex}",
            "user_id": random.choice(USERS),
            "item_id": random.choice(ITEMS),
            "event_type": "view",
            "timestamp": int(time.time()),
        }
        self.client.post("/v1/events", json=event, headers=self.write, name="/v1/events")


class ScenarioShape(LoadTestShape):
    """The stages of ``LOCUST_SCENARIO``, durations times ``LOCUST_TIME_SCALE``."""

    def __init__(self) -> None:
        super().__init__()
        name = os.environ.get("LOCUST_SCENARIO", "normal")
        if name not in SCENARIOS:
            raise ValueError(f"LOCUST_SCENARIO={name!r}; choose one of {sorted(SCENARIOS)}")
        scale = float(os.environ.get("LOCUST_TIME_SCALE", "1"))
        self.stages = [(end * scale, users, rate) for end, users, rate in SCENARIOS[name]]

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        for end, users, rate in self.stages:
            if run_time < end:
                return users, rate
        return None
