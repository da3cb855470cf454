"""CPU of one recommendation and one ``/healthz`` through the app itself, without HTTP.

    python benchmarks/asgi_inprocess.py HOME
    PYTHONPATH=OLD/src python OLD_OR_NEW/benchmarks/asgi_inprocess.py OLD_HOME   # older code

Starts the app of ``HOME`` in this process (its own lifespan: store, registry, engine), with
auth off, the response cache off and one BLAS thread, and calls it as ASGI: the
recommendations route (k=10, exclude_seen, the ``serving_load.py`` filter, known users) and
``/healthz``, three rounds of ``--calls`` each, wall and process CPU per call in µs (process
CPU includes the exposure writer's thread). Without sockets, parsers and a load generator on
the same two cores, it separates the app's cost from the HTTP server's and is steadier than
``serving_load.py``; run old and new code alternately to compare them. Works with the
``recstack.serving.app`` layout from before the serving redesign too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_load import FILTER  # noqa: E402 - the filter the HTTP benchmark sends


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("home", help="a recstack home, e.g. one serving_load.py built")
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--users", type=int, default=162_000, help="users u0..u{N-1} to draw from")
    args = p.parse_args()
    os.environ.update(
        RECSTACK_HOME=args.home,
        RECSTACK_LOG_LEVEL="WARNING",
        RECSTACK_CACHE_TTL_SECONDS="0",
        RECSTACK_RATE_LIMIT_PER_MINUTE=str(10**9),
        RECSTACK_AUTH_ENABLED="false",
        OMP_NUM_THREADS="1",
    )
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    print(json.dumps(asyncio.run(measure(args.calls, args.users))))


async def measure(calls: int, n_users: int) -> dict[str, Any]:
    try:
        from recstack.serving.api.app import create_app
    except ImportError:  # the layout before the serving redesign
        from recstack.serving.app import create_app  # type: ignore[no-redef]
    from recstack.settings import get_settings

    app = create_app(get_settings())
    query = "k=10&exclude_seen=true&filter=" + urllib.parse.quote(json.dumps(FILTER))
    statuses: dict[int, int] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    def scope(path: str, qs: str = "") -> dict[str, Any]:
        return {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": qs.encode(),
            "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
        }  # fmt: skip

    rng = random.Random(3)

    async def rounds(recommendations: bool) -> list[dict[str, float]]:
        out = []
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                if recommendations:
                    user = f"u{rng.randrange(n_users)}"
                    await app(scope(f"/v1/users/{user}/recommendations", query), receive, send)
                else:
                    await app(scope("/healthz"), receive, send)
            out.append(
                {
                    "wall_us": round((time.perf_counter() - wall) / calls * 1e6, 1),
                    "cpu_us": round((time.process_time() - cpu) / calls * 1e6, 1),
                }
            )
        return out

    async with app.router.lifespan_context(app):
        for _ in range(calls):  # warm caches and pages
            await app(
                scope(f"/v1/users/u{rng.randrange(n_users)}/recommendations", query), receive, send
            )
        result = {"recommendations": await rounds(True), "healthz": await rounds(False)}
    return {**result, "statuses": statuses}


if __name__ == "__main__":
    main()
