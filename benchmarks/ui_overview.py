"""How long the dashboard's refreshing data requests take on a large store.

The overview refreshes every 3 s (``/ui/overview/live``, ``/ui/api/overview``) and the Data page
charts ``/ui/api/event-types``; none may scan the interactions table. This builds (or reuses)
a home with a synthetic store (default 25M events, 162K users, 62K items — the serving
benchmark's shape), starts the whole app (``recstack.app.create_app``: serving + dashboard) in
process, logs in with a read key and times each endpoint, and the store queries behind them.

    python benchmarks/ui_overview.py                          # 25M events in a new home
    python benchmarks/ui_overview.py --home /work/bench25m    # reuse an existing home
    python benchmarks/ui_overview.py --events 1000000         # a quick check

A read key is created in the store unless ``--key`` gives one: pass an existing read key to
leave a shared home's store unchanged.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

ENDPOINTS = ("/ui/overview/live", "/ui/api/overview", "/ui/api/event-types")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, help="reuse (or create) this recstack home")
    p.add_argument("--users", type=int, default=162_000)
    p.add_argument("--items", type=int, default=62_000)
    p.add_argument("--events", type=int, default=25_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=30, help="requests per endpoint")
    p.add_argument("--key", help="an existing read key (else one is created in the store)")
    return p.parse_args()


def fill(home: Path, args: argparse.Namespace) -> dict[str, float]:
    """Synthetic events in the home's store unless it already holds some."""
    from recstack.data.synthetic import generate_synthetic
    from recstack.settings import Settings
    from recstack.store import Store

    settings = Settings(home=home)
    settings.ensure_home()
    store = Store.from_settings(settings)
    timings: dict[str, float] = {}
    if store.change_mark()["max_event_id"] == 0:
        start = time.perf_counter()
        data = generate_synthetic(
            args.users, args.items, args.events, seed=args.seed, progress=True
        )
        timings["generate_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        store.ingest(data, progress=True)
        timings["ingest_s"] = round(time.perf_counter() - start, 1)
    store.close()
    return timings


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[max(0, int(0.95 * len(ms)) - 1)], 2),
        "max_ms": round(ms[-1], 2),
    }


def main() -> None:
    args = parse_args()
    from fastapi.testclient import TestClient

    from recstack.app import create_app
    from recstack.settings import Settings
    from recstack.store import Store
    from recstack.store.activity import (
        activity_counts,
        event_types_over_time,
        live_counts,
        recent_events,
    )

    home = args.home or Path(tempfile.mkdtemp(prefix="recstack-ui-bench-"))
    timings = fill(home, args)
    settings = Settings(home=home)
    store = Store.from_settings(settings)
    key = args.key or store.create_api_key("read", "ui-benchmark")[0]
    queries = {
        "live_counts": lambda: live_counts(store.engine),
        "activity_counts (Data page)": lambda: activity_counts(store.engine),
        "event_types_over_time": lambda: event_types_over_time(store.engine),
        "recent_events": lambda: recent_events(store.engine, 20),
    }
    result: dict = {"home": str(home), "events": activity_counts(store.engine), **timings}
    result["queries"] = {}
    for name, query in queries.items():
        query()  # warm the page cache once
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            query()
            seconds.append(time.perf_counter() - start)
        result["queries"][name] = summary(seconds)
    start = time.perf_counter()
    app = create_app(settings, store=store)
    with TestClient(app) as client:
        result["app_start_s"] = round(time.perf_counter() - start, 1)
        form = client.get("/ui/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        login = client.post("/ui/login", data={"key": key, "csrf_token": token})
        assert login.status_code == 200, login.text
        result["endpoints"] = {}
        for path in ENDPOINTS:
            client.get(path)
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                response = client.get(path)
                seconds.append(time.perf_counter() - start)
                assert response.status_code == 200, (path, response.status_code)
            result["endpoints"][path] = summary(seconds)
    store.close()
    worst = max(v["p95_ms"] for v in result["endpoints"].values())
    result["worst_endpoint_p95_ms"] = worst
    result["within_100_ms"] = worst <= 100.0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
