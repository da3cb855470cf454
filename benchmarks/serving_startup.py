"""Where one serving worker's start goes: seconds and anonymous memory per step of a load.

Loads the served model and the serving image of an existing recstack home (for example one
built by ``serving_load.py --home DIR``) step by step in this process, as a worker does, and
prints each step's wall time and the anonymous memory it added (from ``/proc/self``, Linux).
Run it alone: the figures are for one worker on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def anonymous_mib() -> float:
    with open("/proc/self/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a recstack home with a model")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    clock, memory = time.perf_counter(), anonymous_mib()

    def step(name: str) -> None:
        nonlocal clock, memory
        now, mib = time.perf_counter(), anonymous_mib()
        rows.append((name, now - clock, mib - memory))
        clock, memory = now, mib

    from recstack.serving.api.app import create_app  # noqa: F401 - what a worker imports

    step("imports (the app)")
    from recstack.serving.engine import Engine
    from recstack.serving.runtime.image import open_image
    from recstack.serving.runtime.loader import load_registered
    from recstack.settings import Settings
    from recstack.store import Store

    try:  # saved HNSW graphs, where this version of recstack has them
        from recstack.serving.runtime.loader import vector_backend
    except ImportError:
        from recstack.serving.engine.vectors import VectorBackend

        vector_backend = VectorBackend.of

    settings = Settings(home=args.home)
    store = Store.from_settings(settings)
    step("store")
    found = load_registered(settings, settings.model_name)
    if found is None:
        raise SystemExit(f"no model registered in {args.home}")
    model, info = found
    step(f"registry and model ({'mlflow' if 'mlflow' in sys.modules else 'no mlflow'})")
    weighting = settings.weighting()
    image = open_image(settings.home, store, model.items, info, weighting, None, model.users)
    step(f"serving image ({'written' if image.built else 'mapped'}), catalogue, "
         f"{len(image.delta):,} later events")  # fmt: skip
    engine = Engine.from_snapshot(
        image.snapshot, model, model_info=info, ann_threshold=vector_backend(settings)
    )
    step("engine (catalogue, vector search, user dicts)")
    delta = image.delta
    engine.apply_events(
        delta["user_id"].tolist(),
        delta["item_id"].tolist(),
        delta["event_type"].tolist(),
        [None if v != v else v for v in delta["value"].tolist()],
    )
    step("later events applied")
    store.close()
    width = max(len(r[0]) for r in rows)
    print(f"\none worker's load of {args.home}")
    for name, seconds, mib in rows:
        print(f"  {name:<{width}}  {seconds:6.2f} s  {mib:+7.0f} MiB")
    total_s = sum(r[1] for r in rows)
    print(f"  {'total':<{width}}  {total_s:6.2f} s  {anonymous_mib():7.0f} MiB anonymous")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
