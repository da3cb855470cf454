"""Offline quality of recstack's models on the Microsoft Recommenders protocol.

Per-user stratified 75/25 split (seed 42), top-10 lists with each user's training items
removed, every test rating relevant; prints the Markdown table (accuracy, coverage, diversity,
novelty, train seconds). Model parameters come from ``benchmarks/configs/<model>.toml`` when
such a file exists (``--configs`` to use another folder, ``--configs none`` for defaults).

    python benchmarks/quality.py --dataset ml-100k
    python benchmarks/quality.py --dataset ml-latest-small --models ease,als --json
    python benchmarks/quality.py --dataset synthetic --users 2000 --items 500 --events 50000

Published reference on ML-100K (Microsoft Recommenders, same protocol): BiVAE NDCG@10 0.475,
P@10 0.412, R@10 0.219.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from recstack.data.dataset import Dataset
from recstack.data.weights import DEFAULT_EVENT_WEIGHTS, EventWeighting
from recstack.evaluation.protocol import evaluate_models
from recstack.evaluation.report import markdown_table, summary_line, write_report
from recstack.workflows.configs import load_config

ROOT = Path(__file__).resolve().parent
DATASETS = ROOT.parent.parent / "shared" / "datasets"
DEFAULT_MODELS = "popularity,itemknn,ease,als,bpr"
REFERENCE_100K = "| MS Recommenders BiVAE (published) | 0.475 | 0.412 | 0.219 |"


def weighting(kind: str) -> EventWeighting:
    """``binary``: every event weighs 1; ``rating``: ratings weigh their value."""
    if kind == "binary":
        return EventWeighting(type_weight=dict.fromkeys(DEFAULT_EVENT_WEIGHTS, 1.0), use_value=())
    return EventWeighting()


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The benchmark data as a Dataset weighted as ``--weighting`` says."""
    if args.dataset == "synthetic":
        from recstack.data.synthetic import generate_synthetic

        data = generate_synthetic(args.users, args.items, args.events, seed=args.seed)
    else:
        from recstack.data.loaders import load_movielens

        data = load_movielens(args.path or DATASETS / args.dataset)
    return Dataset.from_frame(
        data.interactions, items=data.items, weighting=weighting(args.weighting)
    )


def model_specs(names: list[str], configs: str) -> dict[str, dict[str, Any]]:
    """``{model: params}``: params from ``<configs>/<model>.toml`` where present."""
    specs: dict[str, dict[str, Any]] = {}
    for name in names:
        params: dict[str, Any] = {}
        path = Path(configs) / f"{name}.toml"
        if configs != "none" and path.exists():
            configured, params = load_config(path)
            if configured != name:
                raise SystemExit(f"{path} configures {configured!r}, not {name!r}")
        specs[name] = params
    return specs


def tune_configs(dataset: Dataset, names: list[str], args: argparse.Namespace) -> None:
    """Tune every tunable model on the training part of the split; write ``<model>.toml``."""
    from recstack.data.splits import stratified_split
    from recstack.workflows.configs import save_config
    from recstack.workflows.search_spaces import SEARCH_SPACES
    from recstack.workflows.tune import tune

    if args.configs == "none":
        raise SystemExit("--tune writes configs: give --configs a folder")
    train, _ = stratified_split(dataset, ratio=args.ratio, seed=args.seed, keys=args.split_keys)
    for name in names:
        if name not in SEARCH_SPACES:
            continue
        best, value, _ = tune(train, name, args.tune, args.seed, "ndcg", args.k, args.progress)
        path = save_config(best, Path(args.configs) / f"{name}.toml", model=name)
        header = (
            f"# Tuned with recstack.workflows.tune.tune on {args.dataset} ({args.weighting} weighting): "
            f"the training part of the\n# stratified {args.ratio:g} split (seed {args.seed}), "
            f"re-split 80/20 for validation; {args.tune} TPE trials (seed {args.seed}), "
            f"NDCG@{args.k}.\n"
        )
        path.write_text(header + path.read_text())
        print(f"tuned {name}: validation NDCG@{args.k} {value:.4f} -> {path}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", choices=["ml-100k", "ml-latest-small", "synthetic"], default="ml-100k"
    )
    parser.add_argument("--path", type=Path, help="MovieLens folder (default: shared datasets)")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names")
    parser.add_argument(
        "--configs", default=str(ROOT / "configs"), help="folder of <model>.toml or 'none'"
    )
    parser.add_argument("--weighting", choices=["binary", "rating"], default="binary")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ratio", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--users", type=int, default=2000, help="synthetic users")
    parser.add_argument("--items", type=int, default=500, help="synthetic items")
    parser.add_argument("--events", type=int, default=50_000, help="synthetic events")
    parser.add_argument(
        "--tune",
        type=int,
        default=0,
        metavar="TRIALS",
        help="first tune each model on the training part and write its config to --configs",
    )
    parser.add_argument(
        "--split-keys",
        choices=("hash", "rows"),
        default="hash",
        help="hash: the split recstack evaluate makes of the same data (order-independent); "
        "rows: Microsoft Recommenders' draw in file order (the published MS-protocol figures)",
    )
    parser.add_argument("--out", type=Path, help="also write the full report here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action="store_true", help="show progress bars (stderr)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    dataset = load_dataset(args)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.tune:
        tune_configs(dataset, names, args)
    specs = model_specs(names, args.configs)
    result = evaluate_models(
        dataset,
        specs,
        protocol="stratified",
        ratio=args.ratio,
        seed=args.seed,
        k=args.k,
        ks=(1, 5, 10, 20),
        progress=args.progress,
        split_keys=args.split_keys,
    )
    if args.out:
        write_report(result, args.out)
    if args.json:
        payload = result.to_dict()
        payload.update(
            dataset_name=args.dataset,
            weighting=args.weighting,
            seconds=round(time.perf_counter() - started, 2),
        )
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        return 0
    print(f"## {args.dataset} ({args.weighting} weighting)\n")
    print(summary_line(result) + "\n")
    print(markdown_table(result))
    if args.dataset == "ml-100k" and args.k == 10:
        print("\nReference, same protocol:\n")
        print("| model | NDCG@10 | P@10 | R@10 |\n|---|---:|---:|---:|")
        print(REFERENCE_100K)
    print(f"\n{time.perf_counter() - started:.1f} s in total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
