"""A short Locust run against a local recstack server on a small synthetic store.

Builds a fresh home in a temporary directory with the ``recstack`` command itself (synthetic
e-learning data ingested, ALS trained and promoted to champion, a read and a write key), starts
``recstack serve`` on a free port, waits for ``/readyz``, and runs
``deploy/locust/locustfile.py`` headless against it — by default the ``normal`` scenario
(50 req/s) shortened to 60 s — then prints Locust's statistics table: requests, failures,
latency percentiles and the rate achieved per endpoint.

    flock /tmp/bench.lock python benchmarks/locust_short.py --seconds 60
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "deploy" / "locust" / "locustfile.py"
BIN = Path(sys.executable).parent
SCENARIO_SECONDS = {"normal": 300, "peak": 120, "stress": 360}


def recstack(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "recstack"), *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"recstack {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server at {url} was not ready after {timeout:.0f}s")


def print_table(stats_csv: Path) -> None:
    rows = list(csv.DictReader(stats_csv.open()))
    head = (
        f"{'endpoint':<36}{'requests':>9}{'fails':>7}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}{'req/s':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{(r['Type'] + ' ' + r['Name']).strip():<36}{int(r['Request Count']):>9}"
            f"{int(r['Failure Count']):>7}{r['50%']:>8}{r['95%']:>8}{r['99%']:>8}"
            f"{float(r['Max Response Time']):>8.0f}{float(r['Requests/s']):>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scenario", default="normal", choices=sorted(SCENARIO_SECONDS))
    parser.add_argument("--users", type=int, default=2_000, help="synthetic learners")
    parser.add_argument("--items", type=int, default=300, help="synthetic courses")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1, help="recstack serve workers")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="recstack-load-") as tmp:
        env = {**os.environ, "RECSTACK_HOME": str(Path(tmp) / "home")}
        for key in ("RECSTACK_DATABASE_URL", "RECSTACK_REDIS_URL", "RECSTACK_CONFIG"):
            env.pop(key, None)
        start = time.perf_counter()
        recstack(env, "datasets", "synthetic", "--users", str(args.users), "--items",
                 str(args.items), "--events", str(args.events), "--ingest")  # fmt: skip
        recstack(env, "train", "--model", "als", "--promote", "champion", "--no-evaluate")
        read_key = recstack(env, "keys", "create", "--scope", "read").strip()
        write_key = recstack(env, "keys", "create", "--scope", "write").strip()
        print(f"store and model ready in {time.perf_counter() - start:.1f}s "
              f"({args.users:,} users, {args.items:,} items, {args.events:,} events, ALS)")  # fmt: skip

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(BIN / "recstack"), "serve", "--port", str(port), "--workers",
             str(args.workers), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_ready(url)
            scale = args.seconds / SCENARIO_SECONDS[args.scenario]
            load_env = {
                **env,
                "LOCUST_SCENARIO": args.scenario,
                "LOCUST_TIME_SCALE": f"{scale:.6f}",
                "RECSTACK_API_KEY": read_key,
                "RECSTACK_WRITE_KEY": write_key,
                "RECSTACK_LOAD_USER_COUNT": str(args.users),
                "RECSTACK_LOAD_ITEM_COUNT": str(args.items),
            }
            prefix = Path(tmp) / "locust"
            print(f"locust: scenario {args.scenario} for {args.seconds:.0f}s against {url}")
            run = subprocess.run(
                [str(BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", url,
                 "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
                env=load_env, check=False, capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode not in (0, 1):  # 1: the run had failed requests (in the table)
                raise SystemExit(f"locust failed:\n{run.stderr[-3000:]}")
            print_table(Path(f"{prefix}_stats.csv"))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
