"""Assignment over 1M user ids: sticky across two worker processes and a restart, ramp-safe.

Each "worker" is a separate Python process (spawned, so nothing is inherited) that assigns
every id of a running experiment; a third process after the first two exit stands for a
restart. Then the experiment's traffic is ramped from 10% to 50% and every id assigned before
is checked to keep its arm. Prints the counts and the assignment rate.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

EXPERIMENT = {
    "key": "bench",
    "traffic": 0.1,
    "arms": [
        {"name": "control", "model": "popularity", "weight": 0.5},
        {"name": "treatment", "model": "champion", "weight": 0.5},
    ],
    "status": "running",
    "bucket_start": 0,
}


def assign_all(args: tuple[dict, int]) -> tuple[list[str | None], float]:
    from recstack.experiments.assignment import assign
    from recstack.experiments.config import Experiment

    definition, n = args
    experiment = Experiment.model_validate(definition)
    start = time.perf_counter()
    arms = [assign(experiment, f"user-{i}") for i in range(n)]
    return arms, time.perf_counter() - start


def in_process(definition: dict, n: int) -> tuple[list[str | None], float]:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(assign_all, ((definition, n),))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000)
    args = p.parse_args()
    n = args.users
    worker_a, seconds = in_process(EXPERIMENT, n)
    worker_b, _ = in_process(EXPERIMENT, n)
    restarted, _ = in_process(EXPERIMENT, n)
    ramped, _ = in_process({**EXPERIMENT, "traffic": 0.5}, n)
    differ_workers = sum(a != b for a, b in zip(worker_a, worker_b, strict=True))
    differ_restart = sum(a != b for a, b in zip(worker_a, restarted, strict=True))
    moved = sum(a is not None and a != r for a, r in zip(worker_a, ramped, strict=True))
    result = {
        "users": n,
        "in_experiment_at_10pct": sum(a is not None for a in worker_a),
        "in_experiment_at_50pct": sum(r is not None for r in ramped),
        "differ_between_workers": differ_workers,
        "differ_after_restart": differ_restart,
        "moved_by_ramp_10_to_50pct": moved,
        "treatment_share_at_50pct": round(
            sum(r == "treatment" for r in ramped) / max(sum(r is not None for r in ramped), 1), 4
        ),
        "assignments_per_s": round(n / seconds),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
