"""Figures for experiments: error rates, SRM, an offline A/B on ML-100K, interleaving, OPE, speed.

    flock /tmp/bench.lock python benchmarks/ab_simulation.py
    python benchmarks/ab_simulation.py --only aa,srm --runs 300
    python benchmarks/ab_simulation.py --only ab --http http://127.0.0.1:8000 --api-key KEY

Every figure comes from recstack.experiments' own functions. The offline A/B, interleaving and
OPE parts use the click model of ``recstack.experiments.simulate`` on ML-100K's held-out 25%
(stratified split, seed 42): simulated users are drawn with replacement from ML-100K's 943
real users (each keeps that user's training history and held-out items), so populations larger
than 943 can be studied. ``--http`` runs the A/B part against a live server instead: it asks the
server for each user's list, samples clicks with the same click model, posts them as events
with the response's ``recommendation_id`` and analyses the arms the server assigned
(``drive_server`` is reusable).

The ``interleaving`` part is a Monte Carlo power study (fresh simulated experiments per size,
equal or Gamma clickiness, a fixed number of lists per user). ``benchmarks/interleaving.py``
measures users for 95% correct preference as Chapelle et al. (2012) and Netflix (2017) do, by
bootstrap from one logged experiment, with lists per user and click propensity taken from
ML-100K, a cascade variant, and a close pair (ALS against EASE and ItemKNN).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from recstack.experiments.analysis import ArmSample, analyse_experiment
from recstack.experiments.sequential import sequential_test
from recstack.experiments.stats import linearise_ratio, relative_lift, srm_test, welch_from_moments

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab_offline import (  # noqa: E402
    drive_server,
    load_ml100k,
    offline_ab,
    ope_figures,
    power_curves,
    with_clickiness,
)

PARTS = ("aa", "sequential", "srm", "ab", "interleaving", "ope", "speed")


def _users(rng: np.random.Generator, n: int, ctr: float = 0.1) -> ArmSample:
    """User-level rows with heterogeneous activity and click propensity (like real traffic)."""
    exposures = rng.poisson(3 * rng.gamma(2.0, 1.0, n)) + 1
    clicks = rng.binomial(exposures, np.clip(ctr * rng.gamma(4.0, 0.25, n), 0, 1))
    return ArmSample(exposures, clicks, (clicks > 0).astype(float), clicks * 1.0)


def aa_figures(runs: int, users: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.array(
        [
            analyse_experiment(
                {"a": _users(rng, users), "b": _users(rng, users)}, {"a": 1, "b": 1}, "a"
            )["comparisons"][0]["p_value"]
            for _ in range(runs)
        ]
    )
    fpr = float(np.mean(p < 0.05))
    tol = 1.96 * np.sqrt(0.05 * 0.95 / runs)
    ks = stats.kstest(p, "uniform").pvalue
    print(f"A/A: {runs} experiments x {users} users/arm, CTR (delta method), Welch, alpha 0.05")
    print(
        f"  false-positive rate {fpr:.2%} (target 5% +- {tol:.1%}): {_ok(abs(fpr - 0.05) <= tol)}"
    )
    print(f"  KS uniformity of p-values: p = {ks:.3f} (> 0.01): {_ok(ks > 0.01)}")


def sequential_figures(runs: int, looks: int, per_look: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    fixed_hits = seq_hits = 0
    for _ in range(runs):
        a, b = _users(rng, looks * per_look), _users(rng, looks * per_look)
        fixed = seq = False
        for look in range(1, looks + 1):
            n = look * per_look
            la, lb = (
                linearise_ratio(a.clicks[:n], a.exposures[:n]),
                linearise_ratio(b.clicks[:n], b.exposures[:n]),
            )
            ma, va, mb, vb = la.mean(), la.var(ddof=1) / n, lb.mean(), lb.var(ddof=1) / n
            fixed |= welch_from_moments(mb, vb, n, ma, va, n).p_value < 0.05
            lift = relative_lift(mb, vb, ma, va)
            seq |= sequential_test(lift.lift, lift.se**2).p_value < 0.05
        fixed_hits += fixed
        seq_hits += seq
    tol = 1.96 * np.sqrt(0.05 * 0.95 / runs)
    print(
        f"Peeking: {runs} A/A experiments, {looks} looks every {per_look} users/arm, stop at p < 0.05"
    )
    print(
        f"  fixed-horizon Welch: false-positive rate {fixed_hits / runs:.1%} (> 5% shows the harm)"
    )
    print(
        f"  mSPRT (always valid, tau 0.1): {seq_hits / runs:.1%} (<= 5%, +-{tol:.1%} sampling): "
        f"{_ok(seq_hits / runs <= 0.05 + tol)}"
    )


def srm_figures() -> None:
    for counts in ((51_000, 49_000), (50_200, 49_800)):
        r = srm_test({"a": counts[0], "b": counts[1]}, {"a": 0.5, "b": 0.5})
        print(
            f"SRM {counts[0]:,} / {counts[1]:,} on 50/50: chi2 {r.chi2:.2f}, p = {r.p_value:.3g}, "
            f"flagged: {r.flag}"
        )


def speed_figures(rows: int, users: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, rows)
    propensity = np.clip(0.05 * rng.gamma(4.0, 0.25, users), 0, 1)
    clicked = rng.random(rows) < propensity[user]
    converted = clicked & (rng.random(rows) < 0.2)
    arm_of_user = (user * 2654435761 % 2**32) % 2  # a hash split, as assignment does
    start = time.perf_counter()
    exposures = np.bincount(user, minlength=users)
    clicks = np.bincount(user, weights=clicked, minlength=users)
    conversions = np.bincount(user, weights=converted, minlength=users)
    arm = np.zeros(users, dtype=np.int64)
    arm[user] = arm_of_user
    seen = exposures > 0
    samples = {
        name: ArmSample(
            exposures[seen & (arm == i)],
            clicks[seen & (arm == i)],
            (conversions[seen & (arm == i)] > 0).astype(float),
            conversions[seen & (arm == i)],
        )
        for i, name in enumerate(("control", "treatment"))
    }
    result = analyse_experiment(
        samples, {"control": 1, "treatment": 1}, "control", guardrails=["conversion"]
    )
    elapsed = time.perf_counter() - start
    print(
        f"Speed: {rows:,} exposure rows of {int(seen.sum()):,} users aggregated (numpy) and analysed "
        f"in {elapsed:.2f} s (<= 5 s): {_ok(elapsed <= 5)}; decision: {result['decision']['action']}"
    )


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated of {PARTS}")
    parser.add_argument("--runs", type=int, default=1000, help="simulated A/A experiments")
    parser.add_argument("--users", type=int, default=2000, help="users per arm in A/A runs")
    parser.add_argument("--seq-runs", type=int, default=1000)
    parser.add_argument("--looks", type=int, default=30)
    parser.add_argument("--per-look", type=int, default=100)
    parser.add_argument("--ab-users", type=int, default=10_000, help="simulated users per arm")
    parser.add_argument("--power-runs", type=int, default=200, help="experiments per size")
    parser.add_argument(
        "--clickiness", default="0,1", help="Gamma shapes of per-user click propensity (0: equal)"
    )
    parser.add_argument("--sessions", default="1,10", help="lists per user in the power study")
    parser.add_argument("--impressions", type=int, default=100_000, help="logged for OPE")
    parser.add_argument("--rows", type=int, default=10_000_000, help="exposure rows for speed")
    parser.add_argument("--path", type=Path, help="ML-100K folder (default: shared datasets)")
    parser.add_argument("--http", help="base URL of a running recstack server for the A/B part")
    parser.add_argument("--api-key", help="API key for --http")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    parts = set(args.only.split(","))
    if unknown := parts - set(PARTS):
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    if "aa" in parts:
        aa_figures(args.runs, args.users, args.seed)
    if "sequential" in parts:
        sequential_figures(args.seq_runs, args.looks, args.per_look, args.seed)
    if "srm" in parts:
        srm_figures()
    if parts & {"ab", "interleaving", "ope"}:
        world = load_ml100k(args.path, args.seed)
        if "ab" in parts:
            if args.http:
                drive_server(args.http, world, args.api_key, args.seed)
            else:
                offline_ab(world, args.ab_users, args.seed)
        if "interleaving" in parts:
            for sessions in (int(v) for v in args.sessions.split(",")):
                for shape in (float(v) for v in args.clickiness.split(",")):
                    label = f", clickiness Gamma({shape:g})" if shape > 0 else ", equal clickiness"
                    clicky = with_clickiness(world, shape, args.seed)
                    power_curves(clicky, args.seed, args.power_runs, label, sessions)
        if "ope" in parts:
            ope_figures(world, args.seed, args.impressions)
    if "speed" in parts:
        speed_figures(args.rows, 1_000_000, args.seed)


if __name__ == "__main__":
    main()
