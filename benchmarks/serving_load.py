"""Load benchmark of the HTTP server: throughput, latency at a fixed rate, event ingestion, memory.

Builds (or reuses, with ``--home``) a recstack home holding synthetic e-learning data in the
SQLite store and an ALS model registered as the champion, starts ``recstack serve`` with
several workers on a free loopback port (auth on, a read and a write key), then measures:

1. throughput of ``/healthz`` and of the recommendations route (k=10, exclude_seen, one
   attribute filter, random known users) with ``wrk``, in the same run, and their ratio;
2. latency percentiles at a fixed request rate (default 500/s) with an open-loop generator
   (requests leave on schedule whether or not earlier ones returned; latency is measured from
   the scheduled time, so a stalled server cannot hide its queueing), then the same loop on
   ``/healthz``: the floor this generator and the machine set under any route's figure;
3. ``POST /v1/events`` throughput in batches of 1,000 (events/s) and as single events (posts/s);
4. the server's memory: RSS and PSS summed over its processes (PSS counts the memory-mapped
   model arrays the workers share once).

Every phase also reports CPU per request, read from ``/proc`` and ``getrusage``: the server's
(all its processes), ``wrk``'s and this script's own (the open-loop and event generators, run
on uvloop when it is installed). On a shared or small machine the load generator competes with
the server for the same cores, and CPU per request is steadier than throughput.

Everything runs on 127.0.0.1 and every phase is bounded by ``--duration``. The full-size run is
``--users 162000 --items 62000 --events 25000000``; check it small first, e.g.
``--users 20000 --items 10000 --events 1000000``. Needs ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

FILTER = {"difficulty": {"in": [1, 2]}}
SOAK_SHARE = 0.5  # the soak's default rate, as a share of the throughput wrk measured


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=162_000)
    p.add_argument("--items", type=int, default=62_000)
    p.add_argument("--events", type=int, default=25_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument(
        "--model",
        choices=("als", "two_stage"),
        default="als",
        help="the champion to serve: ALS, or two_stage (ALS and ItemKNN candidates reranked "
        "by LightGBM); a home whose champion is another model gets a new one trained",
    )
    p.add_argument(
        "--rerank-users",
        type=int,
        default=20_000,
        help="two_stage: users whose lists train the reranker (its max_users)",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase")
    p.add_argument("--rate", type=float, default=500.0, help="requests/s of the latency phase")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--cache-ttl", type=int, default=0, help="server response cache TTL (0: off)")
    p.add_argument(
        "--soak",
        type=float,
        default=0.0,
        help="seconds of reads over all users after the throughput phases, at --soak-rate, "
        "with memory after it (compared to idle; 0: skip)",
    )
    p.add_argument(
        "--soak-rate",
        type=float,
        default=0.0,
        help="requests/s of the soak (0: half the recommendations throughput wrk measured; this "
        "script's open loop costs about four times wrk's CPU per request on the same cores, and "
        "80%% of wrk's figure still queued)",
    )
    p.add_argument("--home", type=Path, help="reuse (or create) this recstack home")
    p.add_argument(
        "--experiment",
        action="store_true",
        help="run an A/A experiment on all traffic, so every served list is logged as an exposure",
    )
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    p.add_argument(
        "--startup-only",
        action="store_true",
        help="start the server, print its startup time and memory, stop (no load phases)",
    )
    p.add_argument(
        "--only-events",
        action="store_true",
        help="run only the two event phases (skips wrk, the open loop and the soak)",
    )
    return p.parse_args()


def log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


# ---- data, model, keys ------------------------------------------------------------------------
def prepare_home(args: argparse.Namespace, home: Path, quiet: bool) -> dict:
    """Synthetic data in the store and a champion ALS in the registry (skipped if present)."""
    from recstack.registry import ModelRegistry
    from recstack.settings import Settings
    from recstack.store import Store

    settings = Settings(home=home)
    settings.ensure_home()
    store = Store.from_settings(settings)
    timings: dict[str, float] = {}
    if store.stats()["interactions"] == 0:
        from recstack.data.synthetic import generate_synthetic

        log(f"generating {args.events:,} events ...", quiet)
        start = time.perf_counter()
        data = generate_synthetic(
            args.users, args.items, args.events, seed=args.seed, progress=not quiet
        )
        timings["generate_s"] = time.perf_counter() - start
        start = time.perf_counter()
        store.ingest(data, progress=not quiet)
        timings["ingest_s"] = time.perf_counter() - start
    try:
        served = ModelRegistry(settings).resolve(settings.model_name, settings.serving_alias).model
    except Exception:  # noqa: BLE001 - nothing registered yet
        served = None
    if served != args.model:
        from recstack.serving.runtime.loader import serving_preparation
        from recstack.workflows.train import train_and_register

        log(f"training {args.model} and registering it as the champion ...", quiet)
        start = time.perf_counter()
        params = model_params(args)
        train_and_register(
            settings,
            args.model,
            params,
            evaluate=False,
            promote="champion",
            progress=not quiet,
            prepare_serving=serving_preparation(settings),
        )
        timings["train_register_s"] = time.perf_counter() - start
    if args.startup_only:  # no requests follow: skip reading every user and item
        store.close()
        return {"users": [], "items": [], "events_stored": 0, "keys": {}, "timings": timings}
    snapshot = store.snapshot(settings.weighting())
    scopes = ("read", "write", "admin")
    keys = {scope: store.create_api_key(scope, "load-benchmark")[0] for scope in scopes}
    store.close()
    return {
        "users": snapshot.users.ids.tolist(),
        "items": snapshot.items.ids.tolist(),
        "events_stored": int(snapshot.n_interactions),
        "keys": keys,
        "timings": timings,
    }


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    """The champion's parameters: ALS as given, or two_stage over that ALS and ItemKNN."""
    als = {"factors": args.factors, "iterations": args.iterations, "random_state": args.seed}
    if args.model == "als":
        return als
    return {
        "retrievers": "als,itemknn",
        "retriever_params": json.dumps({"als": als}),
        "folds": 1,
        "max_users": args.rerank_users,
        "seed": args.seed,
    }


# ---- the server -------------------------------------------------------------------------------
def count_exposures(home: Path) -> int:
    """Exposures in the home's store (after the server flushed its log on shutdown)."""
    from recstack.settings import Settings
    from recstack.store import Store

    store = Store.from_settings(Settings(home=home))
    try:
        return store.exposures.count()
    finally:
        store.close()


def stop_aa_experiments(base: str, admin_key: str) -> None:
    """Stop the A/A experiments earlier ``--experiment`` runs left running on this home: a
    plain run measures serving without one, and a new one would share their users."""
    for experiment in json.loads(_admin(base, admin_key, "GET", "/v1/experiments")):
        if experiment["key"].startswith("load-aa-") and experiment["status"] == "running":
            _admin(base, admin_key, "POST", f"/v1/experiments/{experiment['key']}/stop", {})


def start_aa_experiment(base: str, admin_key: str) -> None:
    """Create and start a two-arm A/A experiment (both arms the champion) on all traffic."""
    key = f"load-aa-{int(time.time())}"
    body = {
        "key": key,
        "arms": [
            {"name": "a", "model": "champion", "weight": 0.5},
            {"name": "b", "model": "champion", "weight": 0.5},
        ],
        "traffic": 1.0,
    }
    _admin(base, admin_key, "POST", "/v1/experiments", body)
    _admin(base, admin_key, "POST", f"/v1/experiments/{key}/start", {})


def _admin(base: str, admin_key: str, method: str, path: str, payload: Any = None) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        base + path,
        data=None if payload is None else json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin_key}"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int, args: argparse.Namespace) -> subprocess.Popen:
    script = Path(sys.executable).with_name("recstack")
    env = {
        **os.environ,
        "RECSTACK_HOME": str(home),
        "RECSTACK_RATE_LIMIT_PER_MINUTE": str(10**9),
        "RECSTACK_CACHE_TTL_SECONDS": str(args.cache_ttl),
        "RECSTACK_MAX_REQUEST_BYTES": str(64 * 1024 * 1024),
        "RECSTACK_LOG_LEVEL": "WARNING",
    }
    for name in ("RECSTACK_DATABASE_URL", "RECSTACK_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    command = [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(args.workers), "--log-level", "warning"]
    return subprocess.Popen(command, env=env, start_new_session=True)


def wait_ready(base: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server at {base} was not ready within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def server_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every process of the server's group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields 14/15 of stat: utime, stime (clock ticks)
            total += int(fields[11]) + int(fields[12])
    return total / tick


class CpuMeter:
    """CPU per request of the server, of child processes (wrk) and of this script, over a phase."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.server = server_cpu(pgid)
        self.children = _children_cpu()
        self.own = time.process_time()

    def per_request(self, requests: float) -> dict[str, float]:
        n = max(requests, 1)
        return {
            "server_cpu_us_per_request": round((server_cpu(self.pgid) - self.server) / n * 1e6),
            "wrk_cpu_us_per_request": round((_children_cpu() - self.children) / n * 1e6),
            "generator_cpu_us_per_request": round((time.process_time() - self.own) / n * 1e6),
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_memory(pgid: int) -> dict[str, float]:
    """RSS and PSS (MiB) summed over every process of the server's process group, and PSS split
    into anonymous memory (heaps, arrays built in the process) and file-backed pages (mapped
    serving images, HNSW graphs and libraries: shared, and reclaimable by the kernel)."""
    rss = pss = anon = file = 0
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:  # field 5 of stat: process group
                continue
            status = (entry / "status").read_text()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            rollup = (entry / "smaps_rollup").read_text()
            pss += int(re.search(r"Pss:\s+(\d+)", rollup).group(1))
            anon += int(re.search(r"Pss_Anon:\s+(\d+)", rollup).group(1))
            file += int(re.search(r"Pss_File:\s+(\d+)", rollup).group(1))
            pids.append(int(entry.name))
        except (OSError, AttributeError, ValueError):
            continue
    return {
        "rss_mib": rss / 1024,
        "pss_mib": pss / 1024,
        "pss_anon_mib": anon / 1024,
        "pss_file_mib": file / 1024,
        "processes": len(pids),
    }


# ---- wrk: closed-loop throughput ---------------------------------------------------------------
# Requests are formatted once per wrk thread (init) and replayed in turn: formatting each one in
# Lua as it is sent costs wrk about as much CPU as /healthz costs the server, on the same cores.
LUA = """
local users = {%s}
local headers = {["Authorization"] = "Bearer %s"}
local requests = {}
local sent = 0
init = function(args)
  math.randomseed(%d)
  for i = 1, 4096 do
    local user = users[math.random(#users)]
    requests[i] = wrk.format("GET", "/v1/users/" .. user .. "/recommendations?k=10&exclude_seen=true&filter=%s", headers)
  end
end
request = function()
  sent = sent %% #requests + 1
  return requests[sent]
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def run_wrk(
    url: str, args: argparse.Namespace, pgid: int, script: Path | None = None
) -> dict[str, float]:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{args.duration:.0f}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    meter = CpuMeter(pgid)
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    cpu = meter.per_request(float(re.search(r"(\d+) requests in", out).group(1)))
    cpu.pop("generator_cpu_us_per_request")
    result.update(cpu)
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s|m)\b", out)
        if m:
            result[f"p{pct}_ms"] = float(m.group(1)) * UNITS[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


# ---- a lean HTTP/1.1 client (keep-alive connections over asyncio streams) -------------------
class ClosedByServer(ConnectionError):
    """The server had closed the connection (keep-alive timeout) before this request."""


class Connection:
    """One keep-alive connection; a request at a time. Far cheaper per request than httpx, so
    the generator, not the client library, sets the pace on a small machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ClosedByServer
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = b""
        while (size := int((await self.reader.readline()).strip(), 16)) > 0:
            body += await self.reader.readexactly(size + 2)
        await self.reader.readline()
        return status, body


class Pool:
    """Keep-alive connections to one host, opened on demand, at most ``max_connections``
    (requests beyond that wait for a free connection; the wait counts as latency)."""

    def __init__(self, host: str, port: int, max_connections: int = 256) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(max_connections)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """One request; like any HTTP client, a request that meets a kept-alive connection the
        server has since closed (uvicorn closes idle ones after 5 s) is sent again on a new one."""
        async with self.slots:
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await self._open()
            try:
                result = await conn.request(raw)
            except (ClosedByServer, ConnectionResetError, BrokenPipeError):
                conn.writer.close()
                if not reused:
                    raise
                conn = await self._open()
                result = await conn.request(raw)
            except Exception:
                conn.writer.close()
                raise
            self.idle.append(conn)
            return result

    async def _open(self) -> Connection:
        return Connection(*await asyncio.open_connection(self.host, self.port))

    def close(self) -> None:
        for conn in self.idle:
            conn.writer.close()


def get_request(path: str, key: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()


def post_request(path: str, key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# ---- open loop: latency at a fixed rate --------------------------------------------------------
async def open_loop(
    port: int,
    pgid: int,
    key: str,
    users: list[str],
    rate: float,
    seconds: float,
    path: str | None = None,
) -> dict:
    """Send requests on a fixed schedule; latency counts from each request's scheduled time.

    Recommendations for random ``users``, or ``path`` every time (``/healthz``: the floor that
    this generator and the machine set on any route). ``late_*`` is how long after its
    scheduled time each request started: the generator's own share of the latency (asyncio
    sleeps in whole milliseconds of epoll timeout).
    """
    flt = quote(json.dumps(FILTER, separators=(",", ":")))
    meter = CpuMeter(pgid)
    pool = Pool("127.0.0.1", port)
    latencies: list[float] = []
    lateness: list[float] = []
    failures = 0
    rng = random.Random(1)

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal failures
        lateness.append(time.perf_counter() - scheduled)
        try:
            status, _ = await pool.request(raw)
            failures += status != 200
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            failures += 1
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    n = int(rate * seconds)
    start = time.perf_counter() + 0.2
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        target = path or (
            f"/v1/users/{rng.choice(users)}/recommendations?k=10&exclude_seen=true&filter={flt}"
        )
        tasks.append(asyncio.create_task(one(get_request(target, key), scheduled)))
    sent_rate = n / (time.perf_counter() - start)
    await asyncio.gather(*tasks)
    pool.close()
    ms = np.asarray(latencies) * 1000
    late = np.asarray(lateness) * 1000
    cpu = meter.per_request(n)
    cpu.pop("wrk_cpu_us_per_request")
    return {
        "target_per_s": rate,
        "sent_per_s": round(sent_rate, 1),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "late_p50_ms": float(np.percentile(late, 50)),
        "late_p99_ms": float(np.percentile(late, 99)),
        "failures": failures,
        **cpu,
    }


# ---- events ------------------------------------------------------------------------------------
def random_events(rng: random.Random, users: list[str], items: list[str], n: int) -> list[dict]:
    tag = uuid.uuid4().hex[:8]
    return [
        {
            "event_id": f"bench-{tag}-{i}",
            "user_id": rng.choice(users),
            "item_id": rng.choice(items),
            "event_type": "view",
        }
        for i in range(n)
    ]


async def post_events(
    port: int,
    pgid: int,
    key: str,
    users: list[str],
    items: list[str],
    batch: int,
    concurrency: int,
    seconds: float,
) -> dict:
    """POST events for ``seconds`` from ``concurrency`` senders; batches of ``batch`` events."""
    rng = random.Random(2)
    sent = posts = failures = 0
    pool = Pool("127.0.0.1", port)
    start = time.perf_counter()
    deadline = start + seconds
    meter = CpuMeter(pgid)

    async def sender() -> None:
        nonlocal sent, posts, failures
        while time.perf_counter() < deadline:
            events = random_events(rng, users, items, batch)
            body = json.dumps({"events": events} if batch > 1 else events[0]).encode()
            status, answer = await pool.request(post_request("/v1/events", key, body))
            if status == 200:
                sent += json.loads(answer)["inserted"]
                posts += 1
            else:
                failures += 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    pool.close()
    cpu = meter.per_request(posts + failures)
    cpu.pop("wrk_cpu_us_per_request")
    return {
        "events_per_s": sent / elapsed,
        "posts_per_s": posts / elapsed,
        "batch": batch,
        "concurrency": concurrency,
        "failures": failures,
        **{k.replace("request", "post"): v for k, v in cpu.items()},
    }


# ---- main -------------------------------------------------------------------------------------
def run_async(coroutine: Coroutine[Any, Any, dict]) -> dict:
    """Run a generator phase on uvloop when installed (a cheaper event loop), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> int:
    args = parse_args()
    quiet = args.json
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: install it (Debian/Ubuntu: sudo apt-get install wrk) and rerun",
            file=sys.stderr,
        )
        return 2
    cleanup = args.home is None
    home = args.home or Path(tempfile.mkdtemp(prefix="recstack-load-"))
    server = None
    exposures_logged = None
    try:
        prepared = prepare_home(args, home, quiet)
        users, items, keys = prepared["users"], prepared["items"], prepared["keys"]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log(f"starting recstack serve --workers {args.workers} on {base} ...", quiet)
        start = time.perf_counter()
        server = start_server(home, port, args)
        wait_ready(base)
        startup_s = time.perf_counter() - start
        memory_idle = server_memory(server.pid)
        if args.startup_only:
            print(json.dumps({"server_startup_s": round(startup_s, 2), "memory_idle": memory_idle}))
            return 0
        stop_aa_experiments(base, keys["admin"])  # left by an --experiment run that failed
        if args.experiment:
            start_aa_experiment(base, keys["admin"])
            log("A/A experiment on 100% of traffic: exposure logging on", quiet)

        rng = random.Random(args.seed)
        sample = rng.sample(users, min(len(users), 20_000))
        flt = quote(json.dumps(FILTER, separators=(",", ":")))
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(LUA % (",".join(json.dumps(u) for u in sample), keys["read"], args.seed, flt))
        pgid = server.pid
        if args.only_events:
            health = recs = fixed = floor = {}
            os.unlink(lua.name)
        else:
            log("wrk: /healthz ...", quiet)
            health = run_wrk(f"{base}/healthz", args, pgid)
            log("wrk: recommendations ...", quiet)
            recs = run_wrk(base, args, pgid, Path(lua.name))
            os.unlink(lua.name)
        soak = None
        if args.soak > 0:
            soak_rate = args.soak_rate or SOAK_SHARE * recs.get("requests_per_s", 2500.0)
            log(f"soak: {args.soak:.0f} s at {soak_rate:.0f} req/s over all users ...", quiet)
            shuffled = rng.sample(users, len(users))
            soak = run_async(open_loop(port, pgid, keys["read"], shuffled, soak_rate, args.soak))
            soak["rate"] = round(soak_rate, 1)
            soak["memory_after"] = server_memory(server.pid)
        gc.collect()
        gc.freeze()  # this script's own full collections would stall its schedule, not the server
        if not args.only_events:
            log(f"open loop at {args.rate:.0f} req/s ...", quiet)
            fixed = run_async(open_loop(port, pgid, keys["read"], sample, args.rate, args.duration))
            log(f"open loop at {args.rate:.0f} req/s on /healthz (the floor) ...", quiet)
            floor = run_async(
                open_loop(port, pgid, keys["read"], sample, args.rate, args.duration, "/healthz")
            )
        log("events: batches of 1,000 ...", quiet)
        batched = run_async(
            post_events(port, pgid, keys["write"], sample, items, 1000, 2, args.duration)
        )
        log("events: single posts ...", quiet)
        single = run_async(
            post_events(port, pgid, keys["write"], sample, items, 1, 16, args.duration)
        )
        memory_loaded = server_memory(server.pid)
        if args.experiment:  # a server started later on this home serves outside it
            stop_aa_experiments(base, keys["admin"])
    finally:
        if server is not None:
            stop_server(server)
        if args.experiment and server is not None:
            exposures_logged = count_exposures(home)
        if cleanup:
            shutil.rmtree(home, ignore_errors=True)

    result = {
        "config": {
            "users": args.users,
            "items": args.items,
            "events": args.events,
            "workers": args.workers,
            "factors": args.factors,
            "model": args.model,
            "duration_s": args.duration,
            "wrk_connections": args.connections,
            "cache_ttl_s": args.cache_ttl,
            "filter": FILTER,
            "experiment": args.experiment,
        },
        "prepare": {k: round(v, 2) for k, v in prepared["timings"].items()},
        "server_startup_s": round(startup_s, 2),
        "healthz": health,
        "recommendations": recs,
        "recommendations_to_healthz_ratio": round(
            recs["requests_per_s"] / health["requests_per_s"], 3
        )
        if health
        else None,
        "fixed_rate": fixed,
        "fixed_rate_healthz": floor,
        "events_batched": batched,
        "events_single": single,
        "memory_idle": memory_idle,
        "memory_after_load": memory_loaded,
        "soak": soak,
        "exposures_logged": exposures_logged,
    }
    if not quiet:
        rows = (
            _event_rows(batched, single)
            if args.only_events
            else [
                ("healthz throughput (req/s)", f"{health['requests_per_s']:,.0f}"),
                ("  server / wrk CPU per request (us)", _cpu(health)),
                ("recommendations throughput (req/s)", f"{recs['requests_per_s']:,.0f}"),
                ("  server / wrk CPU per request (us)", _cpu(recs)),
                ("  ratio to healthz", f"{result['recommendations_to_healthz_ratio']:.3f}"),
                (
                    "  wrk p50 / p99 (ms)",
                    f"{recs.get('p50_ms', 0):.1f} / {recs.get('p99_ms', 0):.1f}",
                ),
                (f"P99 at {args.rate:.0f} req/s (ms)", f"{fixed['p99_ms']:.1f}"),
                (
                    "  p50 / p90 / max (ms)",
                    f"{fixed['p50_ms']:.1f} / {fixed['p90_ms']:.1f} / {fixed['max_ms']:.1f}",
                ),
                ("  sent rate / failures", f"{fixed['sent_per_s']:.0f} / {fixed['failures']}"),
                ("  server / generator CPU per request (us)", _cpu(fixed, "generator")),
                (
                    "  generator lateness p50 / p99 (ms)",
                    f"{fixed['late_p50_ms']:.1f} / {fixed['late_p99_ms']:.1f}",
                ),
                (
                    f"  /healthz at {args.rate:.0f} req/s: p50 / p99 (ms)",
                    f"{floor['p50_ms']:.1f} / {floor['p99_ms']:.1f}",
                ),
                *_event_rows(batched, single),
                (
                    "server RSS / PSS after load (MiB)",
                    f"{memory_loaded['rss_mib']:,.0f} / {memory_loaded['pss_mib']:,.0f}",
                ),
                (
                    "server RSS / PSS idle (MiB)",
                    f"{memory_idle['rss_mib']:,.0f} / {memory_idle['pss_mib']:,.0f}",
                ),
                ("  PSS idle: anonymous / file-backed (MiB)", _split(memory_idle)),
                ("server processes", f"{memory_loaded['processes']}"),
                ("server startup (s)", f"{startup_s:.1f}"),
            ]
        )
        if exposures_logged is not None:
            rows.append(("exposures logged (A/A experiment)", f"{exposures_logged:,}"))
        if soak is not None:
            after = soak["memory_after"]
            rows += [
                (
                    f"soak {args.soak:.0f} s at {soak['rate']:.0f} req/s: p99 (ms) / failures",
                    f"{soak['p99_ms']:.1f} / {soak['failures']}",
                ),
                (
                    "  PSS after soak (MiB) / vs idle",
                    f"{after['pss_mib']:,.0f} / {after['pss_mib'] / memory_idle['pss_mib'] - 1:+.1%}",
                ),
                ("  PSS after soak: anonymous / file-backed (MiB)", _split(after)),
            ]
        width = max(len(r[0]) for r in rows)
        print(
            f"\nrecstack serving load: {args.users:,} users x {args.items:,} items x {args.events:,} events, {args.workers} workers"
        )
        for name, value in rows:
            print(f"  {name:<{width}}  {value:>16}")
        print()
    print(json.dumps(result))
    return 0


def _split(memory: dict) -> str:
    return f"{memory['pss_anon_mib']:,.0f} / {memory['pss_file_mib']:,.0f}"


def _event_rows(batched: dict, single: dict) -> list[tuple[str, str]]:
    return [
        ("events, batches of 1,000 (events/s)", f"{batched['events_per_s']:,.0f}"),
        ("  server / generator CPU per post (us)", _cpu(batched, "generator", "post")),
        ("events, single posts (posts/s)", f"{single['posts_per_s']:,.0f}"),
        ("  server / generator CPU per post (us)", _cpu(single, "generator", "post")),
    ]


def _cpu(phase: dict, other: str = "wrk", unit: str = "request") -> str:
    return (
        f"{phase.get(f'server_cpu_us_per_{unit}', 0):,} / "
        f"{phase.get(f'{other}_cpu_us_per_{unit}', 0):,}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
