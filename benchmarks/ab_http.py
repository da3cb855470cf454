"""A/B of popularity against ALS on ML-100K through a real server over HTTP.

    flock /tmp/bench.lock python benchmarks/ab_http.py --users 3000

Builds a home whose store holds ML-100K's training 75% (stratified split, seed 42, as in
``ab_offline``), trains ALS with ``configs/als.toml`` through ``workflows.train`` and registers
it as the champion, defines and starts the experiment ``pop-vs-als`` (``popularity`` against
``champion``, 50/50) through ``workflows.experiments``, starts ``recstack serve`` (2 workers),
and hands it to ``ab_offline.drive_server``: simulated users ask the server for lists, click by
the held-out click model, and post the clicks as events with the list's
``recommendation_id``. Prints the client-side analysis and the server's own
``/v1/experiments/pop-vs-als/results`` (lift, CI, users needed for 80% power, decision).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab_offline import drive_server, load_ml100k  # noqa: E402
from serving_load import free_port, start_server, stop_server, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parent


def seeded_home(home: Path, world):  # noqa: ANN001, ANN201 - ab_offline.World; Settings, Store
    """A home whose store holds the world's training split, with ALS (``configs/als.toml``)
    trained and promoted to champion."""
    from recstack.data.loaders import LoadedData
    from recstack.settings import Settings
    from recstack.store import Store
    from recstack.workflows.configs import load_config
    from recstack.workflows.train import train_and_register

    settings = Settings(home=home)
    settings.ensure_home()
    store = Store.from_settings(settings)
    coo = world.train.matrix.tocoo()
    frame = pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(coo.nnz)],
            "user_id": world.train.users.externals(coo.row),
            "item_id": world.train.items.externals(coo.col),
            "event_type": "view",
            "value": np.nan,
            "timestamp": (1_000_000 + np.arange(coo.nnz)).astype(np.int64),
            "context": None,
        }
    )
    store.ingest(LoadedData(interactions=frame, items=None, source="ml-100k train"))
    _, params = load_config(ROOT / "configs" / "als.toml")
    train_and_register(settings, "als", params, evaluate=False, promote="champion")
    return settings, store


def build_home(home: Path, world) -> str:  # noqa: ANN001 - ab_offline.World
    from recstack.workflows.experiments import create_experiment, start_experiment

    settings, store = seeded_home(home, world)
    arms = [
        {"name": "popularity", "model": "popularity", "weight": 0.5},
        {"name": "als", "model": "champion", "weight": 0.5},
    ]
    create_experiment(store, settings, {"key": "pop-vs-als", "arms": arms})
    start_experiment(store, "pop-vs-als")
    key = store.create_api_key("admin", "ab-http")[0]
    store.close()
    return key


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=3000, help="simulated users (requests)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--home", type=Path)
    args = p.parse_args()
    world = load_ml100k(None, args.seed)
    home = args.home or Path(tempfile.mkdtemp(prefix="recstack-abhttp-"))
    key = build_home(home, world)
    port = free_port()
    server = start_server(home, port, Namespace(workers=2, cache_ttl=0))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        result = drive_server(url, world, key, args.seed, users=args.users,
                              weights={"popularity": 0.5, "als": 0.5})  # fmt: skip
        import httpx

        server_side = httpx.get(
            f"{url}/v1/experiments/pop-vs-als/results", headers={"X-API-Key": key}, timeout=60
        ).json()
    finally:
        stop_server(server)
    primary = [c for c in server_side.get("comparisons", []) if c["metric"] == "ctr"]
    summary = {
        "server_arms": {
            a: {
                "users": v["users"],
                "exposures": v["exposures"],
                "ctr": v["metrics"]["ctr"]["value"],
                "ctr_ci": v["metrics"]["ctr"]["ci"],
            }
            for a, v in server_side.get("arms", {}).items()
        },  # fmt: skip
        "server_ctr_lift": primary[0]["lift"] if primary else None,
        "server_ctr_lift_ci": primary[0]["lift_ci"] if primary else None,
        "server_p_value": primary[0]["p_value"] if primary else None,
        "server_srm": server_side.get("srm"),
        "server_power": server_side.get("power"),
        "server_decision": server_side.get("decision"),
        "client_decision": result.get("decision"),
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
