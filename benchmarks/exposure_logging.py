"""What the exposure log costs the recommendations route, and what ``kill -9`` loses of it.

Builds (or reuses, with ``--home``) a home like ``serving_load.py`` (synthetic data, ALS
champion), then for exposure logging off and on, in the same run:

1. closed-loop throughput of ``/healthz`` and of the recommendations route (k=10,
   exclude_seen, one attribute filter, random known users) with ``--connections`` keep-alive
   connections from this process, and their ratio;
   (also the server's CPU per request, steadier than rates on a shared machine), twice each,
   alternating, so drift in the machine's load shows;
2. with logging on: a load of recommendations, then ``kill -9`` of every server process while
   requests are in flight; the exposures in the store are compared with the
   ``recommendation_id``s of the 200 responses received (lost = answered but not logged).

No ``wrk`` needed: the generator is ``serving_load``'s raw keep-alive client. It shares the
machine's cores with the server, so the ratio is the figure to compare, not absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).parent))

from serving_load import (  # noqa: E402
    FILTER,
    CpuMeter,
    Pool,
    free_port,
    get_request,
    prepare_home,
    start_server,
    stop_server,
    wait_ready,
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--items", type=int, default=5_000)
    p.add_argument("--events", type=int, default=500_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--factors", type=int, default=32)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--cache-ttl", type=int, default=0)
    p.add_argument("--home", type=Path)
    return p.parse_args()


async def closed_loop(port: int, paths: list[str], key: str, seconds: float, conns: int) -> dict:
    pool = Pool("127.0.0.1", port, conns)
    done = failures = 0
    ids: list[str] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(0)

    async def worker() -> None:
        nonlocal done, failures
        while time.perf_counter() < deadline:
            try:
                status, body = await pool.request(get_request(rng.choice(paths), key))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                failures += 1
                continue
            done += 1
            if status != 200:
                failures += 1
            elif body.startswith(b'{"user_id"'):
                ids.append(json.loads(body)["recommendation_id"])

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = time.perf_counter() - start
    pool.close()
    return {"requests_per_s": done / elapsed, "failures": failures, "ids": ids}


def throughput(home: Path, args: argparse.Namespace, info: dict, logging: bool) -> dict:
    os.environ["RECSTACK_EXPOSURE_LOGGING"] = "true" if logging else "false"
    port = free_port()
    server = start_server(home, port, args)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        flt = quote(json.dumps(FILTER, separators=(",", ":")))
        users = random.Random(1).sample(info["users"], 2000)
        recs = [f"/v1/users/{u}/recommendations?k=10&exclude_seen=true&filter={flt}" for u in users]
        key = info["keys"]["read"]
        asyncio.run(closed_loop(port, recs, key, 2.0, args.connections))  # warm up
        meter = CpuMeter(server.pid)
        health = asyncio.run(closed_loop(port, ["/healthz"], key, args.duration, args.connections))
        health_cpu = meter.per_request(health["requests_per_s"] * args.duration)
        meter = CpuMeter(server.pid)
        rec = asyncio.run(closed_loop(port, recs, key, args.duration, args.connections))
        rec_cpu = meter.per_request(rec["requests_per_s"] * args.duration)
    finally:
        stop_server(server)
    return {
        "exposure_logging": logging,
        "healthz_per_s": round(health["requests_per_s"]),
        "recommendations_per_s": round(rec["requests_per_s"]),
        "ratio": round(rec["requests_per_s"] / health["requests_per_s"], 3),
        "server_cpu_us_per_healthz": health_cpu["server_cpu_us_per_request"],
        "server_cpu_us_per_recommendation": rec_cpu["server_cpu_us_per_request"],
        "failures": rec["failures"],
    }


def kill_loss(home: Path, args: argparse.Namespace, info: dict) -> dict:
    from recstack.settings import Settings
    from recstack.store import Store

    os.environ["RECSTACK_EXPOSURE_LOGGING"] = "true"
    port = free_port()
    server = start_server(home, port, args)
    wait_ready(f"http://127.0.0.1:{port}")
    users = random.Random(2).sample(info["users"], 2000)
    recs = [f"/v1/users/{u}/recommendations?k=10" for u in users]

    async def load_then_kill() -> dict:
        task = asyncio.create_task(
            closed_loop(port, recs, info["keys"]["read"], args.duration, args.connections)
        )
        await asyncio.sleep(args.duration / 2)
        os.killpg(server.pid, signal.SIGKILL)
        return await task

    result = asyncio.run(load_then_kill())
    server.wait()
    store = Store.from_settings(Settings(home=home))
    found = store.exposures.find(result["ids"])
    store.close()
    answered = len(result["ids"])
    lost = answered - len(found)
    return {
        "answered_with_200": answered,
        "logged": len(found),
        "lost": lost,
        "lost_share": round(lost / answered, 4) if answered else None,
    }


def main() -> int:
    args = parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="recstack-exposures-"))
    info = prepare_home(args, home, quiet=True)
    runs = [throughput(home, args, info, logging=flag) for flag in (False, True, False, True)]
    loss = kill_loss(home, args, info)
    result = {"runs (off, on, off, on)": runs, "kill_9": loss}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
