"""Off-policy estimates from a live server's exploration log (ML-100K), against the truth.

    flock /tmp/bench.lock python benchmarks/ope_http.py --lists 30000

Builds ``ab_http``'s home (ML-100K's training 75% in the store, tuned ALS as champion) and
registers a second ALS (``--challenger`` parameters) as ``challenger``. Starts the experiment
``explore``: both arms served by the champion, exploring epsilon-greedily (with probability
``--epsilon`` a list is a random ordering of 10 of the champion's top ``--top-n``, each item's
propensity logged), and ``recstack serve`` (2 workers). Simulated users (``ab_offline``'s click
model on the held-out 25%) ask for lists and post their clicks with the list's
``recommendation_id`` (``ab_offline.drive_server``); clicked items join the users' histories.

Then ``workflows.experiment_ope.ope_estimates`` (what ``recstack experiments ope`` prints)
estimates the champion's and the challenger's CTR per slot from the server's own exposure log.
The truth is each target's list for the same requests, ranked from the history as it was when
each list was served, scored with the click model's click probabilities (an expectation: no
clicks are sampled for it). The challenger's items outside the champion's top ``--top-n`` were
never shown: no estimate can see them, and their share is printed as ``unsupported``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab_http import seeded_home  # noqa: E402
from ab_offline import K, drive_server, load_ml100k  # noqa: E402
from serving_load import free_port, start_server, stop_server, wait_ready  # noqa: E402

KEY = "explore"
TARGETS = ("champion", "challenger")


def build_home(home: Path, world, args: argparse.Namespace) -> str:  # noqa: ANN001
    from recstack.workflows.experiments import create_experiment, start_experiment
    from recstack.workflows.train import train_and_register

    settings, store = seeded_home(home, world)
    params = json.loads(args.challenger)
    train_and_register(settings, "als", params, evaluate=False, promote="challenger")
    arms = [
        {"name": "a", "model": "champion", "weight": 0.5},
        {"name": "b", "model": "champion", "weight": 0.5},
    ]
    exploration = {"kind": "epsilon", "epsilon": args.epsilon, "top_n": args.top_n}
    create_experiment(store, settings, {"key": KEY, "arms": arms, "exploration": exploration})
    start_experiment(store, KEY)
    key = store.create_api_key("admin", "ope-http")[0]
    store.close()
    return key


def truth_and_support(home: Path, world, top_n: int) -> dict:  # noqa: ANN001
    """Each target's expected CTR per slot on the logged requests, and the share of its
    (list, slot) items the champion's top ``top_n`` did not hold."""
    from recstack.settings import Settings
    from recstack.store import Store
    from recstack.workflows.experiment_ope import clicked_since, logged_arrays, target_lists

    settings = Settings(home=home)
    store = Store.from_settings(settings)
    try:
        logs = logged_arrays(store, KEY)
        users = world.train.users.indices(logs["users"])
        when = (
            logs["served_at"],
            clicked_since(logs["users"], logs["served_at"], logs["items"], logs["clicks"]),
        )
        wide = target_lists(store, settings, "champion", logs["users"], top_n, *when)
        shown = [set(row) for row in wide.tolist()]
        out = {}
        for target in TARGETS:
            lists = target_lists(store, settings, target, logs["users"], K, *when)
            ids = np.where(lists == None, "", lists).astype(str)  # noqa: E711 - object array
            items = world.train.items.indices(ids.ravel().tolist()).reshape(ids.shape)
            outside = np.mean(
                [[i not in s for i in row] for row, s in zip(lists.tolist(), shown, strict=True)]
            )
            out[target] = {
                "truth": float(world.click_model.probabilities(users, items).mean()),
                "unsupported": float(outside),
            }
        return out
    finally:
        store.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lists", type=int, default=30000, help="simulated requests")
    p.add_argument("--epsilon", type=float, default=0.5)
    p.add_argument("--top-n", type=int, default=50)
    p.add_argument(
        "--challenger",
        default='{"factors": 64, "regularization": 60.0, "alpha": 9.45, "iterations": 26}',
        help="JSON parameters of the challenger ALS (default: the champion's, with 64 factors)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--home", type=Path)
    args = p.parse_args()
    world = load_ml100k(None, args.seed)
    home = args.home or Path(tempfile.mkdtemp(prefix="recstack-opehttp-"))
    key = build_home(home, world, args)
    port = free_port()
    server = start_server(home, port, Namespace(workers=2, cache_ttl=0))
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        drive_server(f"http://127.0.0.1:{port}", world, key, args.seed, users=args.lists,
                     weights={"a": 0.5, "b": 0.5})  # fmt: skip
    finally:
        stop_server(server)
    from recstack.settings import Settings
    from recstack.store import Store
    from recstack.workflows.experiment_ope import ope_estimates

    settings = Settings(home=home)
    store = Store.from_settings(settings)
    try:
        estimates = ope_estimates(store, settings, KEY, list(TARGETS))
    finally:
        store.close()
    truth = truth_and_support(home, world, args.top_n)
    print(
        f"Off-policy evaluation over HTTP: {estimates['lists']:,} lists logged by the server "
        f"(epsilon {args.epsilon}, top {args.top_n}), {estimates['skipped']} skipped, logged CTR "
        f"per slot {estimates['logged_ctr_per_slot']:.4f}"
    )
    summary = {"lists": estimates["lists"], "logged_ctr": estimates["logged_ctr_per_slot"]}
    for target in TARGETS:
        t = truth[target]["truth"]
        got = estimates["targets"][target]
        errors = {name: (e["ctr_per_slot"] - t) / t for name, e in got.items()}
        parts = ", ".join(
            f"{name.upper()} {e['ctr_per_slot']:.4f} ± {e['se']:.4f} ({errors[name]:+.1%})"
            for name, e in got.items()
        )
        print(
            f"  {target}: truth {t:.4f} (unsupported {truth[target]['unsupported']:.1%}); "
            f"{parts}; within 10%: {'yes' if max(map(abs, errors.values())) <= 0.10 else 'NO'}"
        )
        summary[target] = {"truth": t, **truth[target], **got, "relative_error": errors}
    print(json.dumps(summary, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
