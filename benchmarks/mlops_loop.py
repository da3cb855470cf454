"""The monitoring loop's figures: drift false alarms and detection, and the loop end to end.

(a) Drift: 100 resampled references of one unchanged window (MovieLens 100K and the synthetic
    world) give the false-alarm rate of the dataset-drift verdict (target <= 5%); the synthetic
    scenario (popularity reversed inside each topic, 30% of events on new items) and the same
    shift applied to MovieLens must be flagged.
(b) The loop under load against a real ``recstack serve --workers 2``: events flow in over HTTP
    -> drift report -> gated retrain (admin API) -> promotion -> both workers reload, while load
    threads count failed requests (target 0); a degraded challenger (shuffled item factors) is
    refused; rollback timed as a library call, over HTTP and as the ``recstack rollback``
    command.

Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/mlops_loop.py [--skip-loop]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from recstack.data.loaders import LoadedData
from recstack.models.catalog import create_model
from recstack.monitoring.config import DriftConfig
from recstack.monitoring.drift import drift_share
from recstack.monitoring.signals import drift_signals
from recstack.settings import Settings
from recstack.store import Store
from recstack.testing.scenarios import World, window_frame
from recstack.workflows.retrain import run_retrain
from recstack.workflows.rollback import run_rollback
from recstack.workflows.train import train_and_register

ML100K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k" / "u.data"
DAY = 86_400


# ---- (a) drift ------------------------------------------------------------------------------
def verdict(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[bool, dict[str, bool]]:
    config = DriftConfig()
    signals, _ = drift_signals(reference, current, config)
    share = drift_share([s.drifted for s in signals])
    return share >= config.share, {s.name: s.drifted for s in signals}


def false_alarms(window: pd.DataFrame, trials: int = 100, seed: int = 0) -> dict[str, float]:
    """Split one window at random 70/30 per trial, bootstrap the 70% as the reference."""
    rng = np.random.default_rng(seed)
    alarms = 0
    per_signal: dict[str, int] = {}
    for _ in range(trials):
        order = rng.permutation(len(window))
        cut = int(0.7 * len(window))
        reference = window.iloc[rng.choice(order[:cut], size=cut, replace=True)]
        current = window.iloc[order[cut:]]
        drifted, signals = verdict(reference, current)
        alarms += drifted
        for name, flag in signals.items():
            per_signal[name] = per_signal.get(name, 0) + int(flag)
    return {"dataset": alarms / trials, "signals": {k: v / trials for k, v in per_signal.items()}}


def shifted(window: pd.DataFrame, new_share: float, seed: int = 0) -> pd.DataFrame:
    """Reverse the popularity order of the items and send ``new_share`` of events to new items."""
    rng = np.random.default_rng(seed)
    counts = window["item_id"].value_counts()
    reverse = dict(zip(counts.index, counts.index[::-1], strict=True))
    out = window.copy()
    out["item_id"] = out["item_id"].map(reverse)
    new = rng.random(len(out)) < new_share
    out.loc[new, "item_id"] = [f"new{j}" for j in rng.integers(0, 300, int(new.sum()))]
    return out


def load_ml100k() -> pd.DataFrame:
    frame = pd.read_csv(ML100K, sep="\t", names=["user_id", "item_id", "value", "timestamp"])
    frame["event_type"] = "rate"
    return frame.astype({"user_id": str, "item_id": str})


def drift_figures() -> None:
    world = World(n_users=2000, n_items=600, n_new_items=150)
    steady = window_frame(world, start=0, seed=1, events_per_user=15)
    synthetic_fa = false_alarms(steady)
    print(f"[drift] synthetic world, {len(steady)} events, 100 resampled references:")
    print(f"        false-alarm rate (dataset drift) {synthetic_fa['dataset']:.2%}")
    print(
        "        per signal "
        + ", ".join(f"{k} {v:.0%}" for k, v in synthetic_fa["signals"].items())
    )
    reference = window_frame(world, start=0, seed=1, events_per_user=15)
    current = window_frame(
        world, start=DAY, seed=2, events_per_user=15, shift=True, new_item_share=0.3
    )
    config = DriftConfig()
    signals, _ = drift_signals(reference, current, config)
    share = drift_share([s.drifted for s in signals])
    print(
        f"[drift] synthetic scenario (popularity reversed + 30% new items): drifted="
        f"{share >= config.share}, share={share:.2f}"
    )
    for s in signals:
        print(f"        {s.name:20s} {s.method:24s} {s.value:8.4f}  drift={s.drifted}")
    if not ML100K.exists():
        print(f"[drift] {ML100K} not found: MovieLens figures skipped")
        return
    ml = load_ml100k()
    ml_fa = false_alarms(ml)
    print(f"[drift] MovieLens 100K, {len(ml)} events, 100 resampled references:")
    print(f"        false-alarm rate (dataset drift) {ml_fa['dataset']:.2%}")
    print("        per signal " + ", ".join(f"{k} {v:.0%}" for k, v in ml_fa["signals"].items()))
    rng = np.random.default_rng(1)
    order = rng.permutation(len(ml))
    ref, cur = ml.iloc[order[:70_000]], ml.iloc[order[70_000:]]
    drifted, flags = verdict(ref, shifted(cur, 0.3))
    print(
        f"[drift] MovieLens 100K with the same shift applied to a 30% sample: drifted={drifted}"
        f" ({', '.join(k for k, v in flags.items() if v)})"
    )
    by_time = ml.sort_values("timestamp")
    drifted, flags = verdict(by_time.iloc[:80_000], by_time.iloc[80_000:])
    print(
        f"[drift] MovieLens 100K, first 80% by time vs the last 20%: drifted={drifted} "
        f"({', '.join(k for k, v in flags.items() if v) or 'no signal'})"
    )


# ---- (b) the loop under load ----------------------------------------------------------------
class Load:
    """``threads`` clients on fresh connections (both workers answer) counting failures."""

    def __init__(self, base: str, headers: dict[str, str], users: int, threads: int = 3) -> None:
        self.base, self.headers, self.users = base, {**headers, "Connection": "close"}, users
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not self._stop.is_set():
            url = f"{self.base}/v1/users/u{rng.integers(0, self.users)}/recommendations?k=10"
            try:
                response = httpx.get(url, headers=self.headers, timeout=10)
                if response.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{response.status_code} {response.text[:120]}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def versions(base: str, headers: dict[str, str], n: int = 24) -> set[int]:
    found = set()
    for user in range(n):
        body = httpx.get(
            f"{base}/v1/users/u{user}/recommendations?k=3",
            headers={**headers, "Connection": "close"},
            timeout=10,
        ).json()
        found.add(body["model"]["version"])
    return found


def wait_version(base: str, headers: dict[str, str], version: int, timeout: float = 120) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if versions(base, headers) == {version}:
            return time.perf_counter() - start
        time.sleep(0.1)
    raise RuntimeError(f"workers did not all reach version {version}")


def shuffled_factors(family, params, dataset):  # noqa: ANN001, ANN201
    model = create_model(family, **params).fit(dataset)
    order = np.random.default_rng(0).permutation(len(model.item_factors))
    model.item_factors = np.ascontiguousarray(model.item_factors[order])
    return model


def post_events(base: str, headers: dict[str, str], frame: pd.DataFrame) -> float:
    rows = [
        {
            "event_id": r.event_id,
            "user_id": r.user_id,
            "item_id": r.item_id,
            "event_type": r.event_type,
            "timestamp": int(r.timestamp),
        }
        for r in frame.itertuples()
    ]
    start = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for lo in range(0, len(rows), 2000):
            response = client.post("/v1/events", json={"events": rows[lo : lo + 2000]})
            response.raise_for_status()
    return time.perf_counter() - start


def loop_figures() -> None:
    home = Path(tempfile.mkdtemp(prefix="recstack-loop-")) / "home"
    for name in ("RECSTACK_DATABASE_URL", "RECSTACK_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
        os.environ.pop(name, None)
    os.environ["RECSTACK_HOME"] = str(home)
    settings = Settings(home=home)
    settings.ensure_home()
    world = World(n_users=3000, n_items=1000, n_new_items=200, n_topics=10)
    start = int(time.time()) - 30 * DAY
    with Store.from_settings(settings) as store:
        old = window_frame(world, start=start, seed=1, prefix="a", events_per_user=15)
        store.ingest(LoadedData(interactions=old, items=world.items_frame(), source="old"))
        keys = {s: store.create_api_key(s, "bench")[0] for s in ("read", "write", "admin")}
    als = {"factors": 32, "iterations": 10, "random_state": 0}
    train_and_register(settings, "als", als, evaluate=False, promote="champion")
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    env = {
        **os.environ,
        "RECSTACK_LOG_LEVEL": "WARNING",
        "RECSTACK_RATE_LIMIT_PER_MINUTE": "10000000",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("recstack")),
            "serve",
            "--port",
            str(number),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{number}"
    read = {"Authorization": f"Bearer {keys['read']}"}
    write = {"Authorization": f"Bearer {keys['write']}"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    load = Load(base, read, world.n_users)
    try:
        t0 = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > 180:
                raise RuntimeError("server not ready")
            time.sleep(0.3)
        print(
            f"[loop] server ready in {time.perf_counter() - t0:.1f}s, serving {versions(base, read)}"
        )
        load.start()
        drifted = window_frame(
            world,
            start=start + 10 * DAY,
            seed=3,
            prefix="d",
            shift=True,
            new_item_share=0.3,
            events_per_user=15,
        )
        took = post_events(base, write, drifted)
        print(f"[loop] {len(drifted)} drifted events posted over HTTP in {took:.1f}s")
        t = time.perf_counter()
        report = httpx.post(f"{base}/v1/admin/drift", headers=admin, timeout=120).json()
        print(
            f"[loop] drift report {report['id']}: drifted={report['drifted']} "
            f"share={report['share']:.2f} in {time.perf_counter() - t:.2f}s"
        )
        t = time.perf_counter()
        body = {
            "drift_report_id": report["id"],
            "reason": "drift",
            "config": {"holdout_share": 0.25},
        }
        with httpx.Client(base_url=base, headers=admin, timeout=60) as client:
            job = client.post("/v1/admin/retrain", json=body).json()
            while True:
                state = client.get(f"/v1/admin/jobs/{job['id']}").json()
                if state["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.2)
        decision = state.get("result") or {}
        print(
            f"[loop] retrain job {state['status']} in {time.perf_counter() - t:.1f}s: "
            f"{decision.get('reason', state.get('error'))}"
        )
        both = wait_version(base, read, 2)
        print(f"[loop] both workers serve version 2 {both:.2f}s after the job finished")
        later = window_frame(
            world,
            start=start + 20 * DAY,
            seed=6,
            prefix="e",
            shift=True,
            new_item_share=0.3,
            events_per_user=15,
        )
        post_events(base, write, later)
        refused = run_retrain(settings, fit=shuffled_factors, config={"holdout_share": 0.25})
        print(
            f"[loop] degraded challenger (shuffled item factors) v{refused.challenger['version']}"
            f": promoted={refused.promoted}; {refused.reason}"
        )
        print(f"[loop] still serving {versions(base, read)}")
        t = time.perf_counter()
        rolled = httpx.post(f"{base}/v1/admin/rollback", headers=admin, timeout=30)
        http_rollback = time.perf_counter() - t
        reload_after = wait_version(base, read, 1)
        print(
            f"[loop] rollback over HTTP: {rolled.status_code} in {http_rollback:.3f}s "
            f"(aliases {rolled.json()['aliases']}); both workers on version 1 "
            f"{reload_after:.2f}s later"
        )
        t = time.perf_counter()
        library = run_rollback(settings)
        library_seconds = time.perf_counter() - t
        # another process without Redis cannot reach the workers: one admin reload tells both
        httpx.post(f"{base}/v1/admin/reload", headers=admin, timeout=120).raise_for_status()
        wait_version(base, read, 2)
        print(
            f"[loop] rollback as a library call: {library_seconds:.3f}s "
            f"(decision says {library.seconds:.3f}s), back to version 2"
        )
        t = time.perf_counter()
        cli = subprocess.run(
            [str(Path(sys.executable).with_name("recstack")), "rollback"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        print(
            f"[loop] `recstack rollback` (a new process): exit {cli.returncode} in "
            f"{time.perf_counter() - t:.2f}s wall: {cli.stdout.strip().splitlines()[0]}"
        )
        httpx.post(f"{base}/v1/admin/reload", headers=admin, timeout=120).raise_for_status()
        wait_version(base, read, 1)
    finally:
        load.stop()
        print(f"[loop] load: {load.ok} requests answered 200, {len(load.failures)} failed")
        for failure in load.failures[:5]:
            print(f"        {failure}")
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--skip-drift", action="store_true")
    args = parser.parse_args()
    if not args.skip_drift:
        drift_figures()
    if not args.skip_loop:
        loop_figures()


if __name__ == "__main__":
    main()
