"""What a new user gets without tuning: default models and ``--model auto`` through the store.

As a user runs it: MovieLens ingested into a fresh store (``recstack ingest``, default event
weights), ``recstack evaluate`` of the default models, and ``recstack train --model auto``
(choosing and tuning within the budget on the training part of the same split). Every figure
uses the store's snapshot and the default split (stratified 75/25, seed 42, hash keys).

    python benchmarks/defaults.py --dataset ml-100k
    python benchmarks/defaults.py --dataset ml-latest-small --budget 120
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from recstack.data.loaders import load_movielens
from recstack.registry import ModelRegistry
from recstack.settings import Settings
from recstack.store import Store
from recstack.workflows.evaluate import evaluate_from_store
from recstack.workflows.train import train_and_register

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
MODELS = ["popularity", "itemknn", "ease", "als", "bpr"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=("ml-100k", "ml-latest-small"))
    parser.add_argument("--path", type=Path, help="MovieLens folder (default: shared datasets)")
    parser.add_argument("--budget", type=float, default=120.0, help="--model auto budget (s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out: dict = {"dataset": args.dataset, "budget": args.budget}
    with tempfile.TemporaryDirectory(prefix="recstack-defaults-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        settings.ensure_home()
        Store.from_settings(settings).ingest(load_movielens(args.path or DATASETS / args.dataset))
        result = evaluate_from_store(settings, MODELS, k=10)
        out["defaults"] = {m.name: round(m.metrics["ndcg"], 4) for m in result.models}
        start = time.perf_counter()
        version = train_and_register(settings, "auto", auto_budget=args.budget)
        tags = ModelRegistry(settings).client.get_run(version.run_id).data.tags
        out["auto"] = {
            "selection_seconds": float(tags["recstack.auto.seconds"]),
            "model": version.model,
            "params": version.params,
            "ndcg_at_10": round(version.metrics["ndcg_at_10"], 4),
            "seconds": round(time.perf_counter() - start, 1),
            "validation": {  # each family's best NDCG@10 on the validation split auto carved
                key.removeprefix("recstack.auto.").removesuffix("_ndcg"): float(value)
                for key, value in tags.items()
                if key.startswith("recstack.auto.") and key.endswith("_ndcg")
            },
        }
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
        return 0
    print(f"## {args.dataset}: default models and --model auto (stratified 75/25, seed 42)\n")
    print("| model | NDCG@10 |\n|---|---|")
    for name, value in out["defaults"].items():
        print(f"| {name} (defaults) | {value:.4f} |")
    auto = out["auto"]
    seconds = f"{auto['seconds']} s, choosing {auto['selection_seconds']:.1f} s"
    print(f"| auto -> {auto['model']} ({seconds}) | {auto['ndcg_at_10']:.4f} |")
    print(f"\nauto params: {auto['params']}")
    print(f"auto validation NDCG@10 per family: {auto['validation']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
