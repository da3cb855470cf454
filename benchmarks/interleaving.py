r"""Users needed for 95% correct preference: team-draft interleaving against an A/B test (ML-100K).

    flock /tmp/bench.lock python benchmarks/interleaving.py --pairs als:popularity \
        --log-users 100000 --draws 1000 --max-users 100000
    flock /tmp/bench.lock python benchmarks/interleaving.py --pairs als:ease,als:itemknn \
        --sessions days --log-users 200000 --draws 200
    flock /tmp/bench.lock python benchmarks/interleaving.py --pairs als:ease,als:itemknn \
        --sessions pages --stop 0 --log-users 100000 --draws 200 --max-users 400000

(each a few minutes on two cores; the close pairs need logs far larger than the users needed, or
the log's own lift, not the truth, sets the answer).

The measure is that of Chapelle et al. (2012) and Netflix (2017): log one large experiment per
method, bootstrap-subsample N users from it, and find the N from which at least 95% of subsamples
prefer the truly better ranker (``recstack.experiments.sensitivity``). "Users" counts everyone in
the experiment: an A/B test of N users has N/2 per arm, an interleaving test shows all N users
the interleaved list.

The user model is taken from ML-100K rather than tuned:

* ranker quality: the click model of ``recstack.experiments.simulate`` on the held-out 25%
  (stratified split, seed 42): examination 1/position, click 0.5 on a held-out item, 0.02
  otherwise; a simulated user is a real ML-100K user drawn with replacement;
* lists per user: from that user's real activity, either the number of distinct days with
  ratings (``days``: median 1, mean 2.7, up to 40) or one list of K per K ratings (``pages``:
  median 7, mean 10.6, up to 74); both are heavy-tailed like real traffic;
* click propensity: the user's share of ratings >= 4 relative to the mean (users who like less of
  what they watch click less), multiplying both click probabilities;
* leaving the list: ``--stop`` is the probability of stopping after a click (0: the
  position-based model; 0.5: a cascade, Guo et al.'s DCM); with stopping, a click on one arm's item
  takes the chance of a click away from the other's, which Iizuka et al. (2023) show is where
  interleaving's advantage comes from.

Interleaving's statistic is the per-user preference sign (Chapelle et al.'s delta, as
``preference_test``); beside it, the summed credit difference (``paired_correct_preference``),
which weighs users by their clicks as CTR weighs them by their lists.

The A/B metric is the primary metric of ``analyse_experiment``: CTR (clicks / shown items, summed
per user) with the delta method; clicks per user is reported beside it. The truly better ranker
is the one with the higher expected CTR over the population (computed exactly, not sampled).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recstack.data.dataset import Dataset
from recstack.data.splits import stratified_split
from recstack.data.weights import DEFAULT_EVENT_WEIGHTS, EventWeighting
from recstack.experiments.interleaving import team_draft
from recstack.experiments.sensitivity import (
    CorrectPreference,
    ab_correct_preference,
    interleaving_correct_preference,
    paired_correct_preference,
    users_needed,
)
from recstack.experiments.simulate import ClickModel
from recstack.experiments.stats import linearise_ratio
from recstack.models.catalog import create_model
from recstack.workflows.configs import load_config

ROOT = Path(__file__).resolve().parent
DATASETS = ROOT.parent.parent / "shared" / "datasets"
K = 10
DRAFTS = 16  # team-draft coin sequences precomputed per user; each list shown picks one


@dataclass
class World:
    lists: dict[str, np.ndarray]
    click_model: ClickModel
    profiles: np.ndarray
    sessions: dict[str, np.ndarray]
    propensity: np.ndarray


def load_world(path: Path | None, seed: int, models: set[str]) -> World:
    from recstack.data.loaders import load_movielens

    data = load_movielens(path or DATASETS / "ml-100k")
    binary = EventWeighting(type_weight=dict.fromkeys(DEFAULT_EVENT_WEIGHTS, 1.0), use_value=())
    ds = Dataset.from_frame(data.interactions, items=data.items, weighting=binary)
    train, test = stratified_split(ds, ratio=0.75, seed=seed)
    users = np.arange(train.n_users)
    lists = {}
    for name in sorted(models):
        params = {}
        if (ROOT / "configs" / f"{name}.toml").exists():
            _, params = load_config(ROOT / "configs" / f"{name}.toml")
        model = create_model(name, **params).fit(train)
        lists[name] = model.recommend(train.matrix, K, users=users)[0]

    frame = data.interactions
    index = {uid: i for i, uid in enumerate(train.users.to_list())}
    row = frame["user_id"].map(index).to_numpy()
    if np.isnan(row.astype(float)).any():
        raise SystemExit("ML-100K users missing from the training split")
    row = row.astype(np.int64)
    day = frame["timestamp"].to_numpy() // 86_400
    pairs = np.unique(np.column_stack([row, day]), axis=0)
    days = np.bincount(pairs[:, 0], minlength=train.n_users)
    ratings = np.bincount(row, minlength=train.n_users)
    positive = np.bincount(row, weights=frame["value"].to_numpy() >= 4, minlength=train.n_users)
    share = positive / np.maximum(ratings, 1)
    propensity = share / share.mean()
    sessions = {"days": days, "pages": np.ceil(ratings / K).astype(np.int64)}
    click_model = ClickModel.from_heldout(test.matrix, k=K, user_scale=propensity)
    profiles = np.flatnonzero(np.diff(click_model.relevant.indptr) > 0)
    print(
        f"ML-100K: {train.n_users} users ({profiles.size} with held-out items), {train.n_items} "
        f"items; lists per user: days median {np.median(days):g} mean {days.mean():.1f} max "
        f"{days.max()}, pages median {np.median(sessions['pages']):g} mean "
        f"{sessions['pages'].mean():.1f} max {sessions['pages'].max()}; click propensity (share of "
        f"ratings >= 4 / mean) 10th-90th centile {np.percentile(propensity, 10):.2f}-"
        f"{np.percentile(propensity, 90):.2f}"
    )
    return World(lists, click_model, profiles, sessions, propensity)


def cascade_clicks(p: np.ndarray, stop: float, rng: np.random.Generator) -> np.ndarray:
    """Clicks down each list: position j is clicked with probability ``p[:, j]`` if the user is
    still there; after a click the user leaves with probability ``stop`` (0: independent PBM)."""
    clicks = rng.random(p.shape) < p
    if stop <= 0:
        return clicks
    active = np.ones(p.shape[0], dtype=bool)
    for j in range(p.shape[1]):
        clicks[:, j] &= active
        active &= ~(clicks[:, j] & (rng.random(p.shape[0]) < stop))
    return clicks


def expected_clicks(p: np.ndarray, stop: float) -> np.ndarray:
    """Expected clicks per list under ``cascade_clicks``: p_j times the chance of still being
    there, prod_{i<j} (1 - stop * p_i)."""
    stay = np.cumprod(1 - stop * p, axis=1)
    reach = np.hstack([np.ones((p.shape[0], 1)), stay[:, :-1]])
    return (p * reach).sum(axis=1)


def _chunks(n: int, size: int = 20_000):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def log_ab(
    world: World, arm: str, users: np.ndarray, sessions: np.ndarray, stop: float, rng
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and shown items per simulated user of one A/B arm."""
    p_all = world.click_model.probabilities(world.profiles, world.lists[arm][world.profiles])
    shown_per_list = (world.lists[arm][world.profiles] >= 0).sum(axis=1)
    clicks = np.zeros(users.size)
    for sl in _chunks(users.size):
        u, s = users[sl], sessions[sl]
        rows = np.repeat(np.arange(u.size), s)
        c = cascade_clicks(p_all[u][rows], stop, rng).sum(axis=1)
        clicks[sl] = np.bincount(rows, weights=c, minlength=u.size)
    return clicks, (shown_per_list[users] * sessions).astype(float)


_DRAFT_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def _drafts(world: World, better: str, worse: str) -> tuple[np.ndarray, np.ndarray]:
    """Teams and click probabilities of ``DRAFTS`` team-draft lists per user (seeded per pair)."""
    if (better, worse) not in _DRAFT_CACHE:
        rng = np.random.default_rng(len(_DRAFT_CACHE))
        n_prof = world.profiles.size
        teams = np.full((n_prof, DRAFTS, K), -1, dtype=np.int8)
        items = np.full((n_prof, DRAFTS, K), -1, dtype=np.int64)
        for r, u in enumerate(world.profiles):
            a, b = world.lists[better][u], world.lists[worse][u]
            for d in range(DRAFTS):
                out = team_draft(a[a >= 0], b[b >= 0], K, rng)
                m = len(out.items)
                teams[r, d, :m] = out.teams
                items[r, d, :m] = out.items
        users = np.repeat(world.profiles, DRAFTS)
        probs = world.click_model.probabilities(users, items.reshape(-1, K))
        _DRAFT_CACHE[(better, worse)] = (teams, probs.reshape(n_prof, DRAFTS, K))
    return _DRAFT_CACHE[(better, worse)]


def log_interleaving(
    world: World,
    better: str,
    worse: str,
    users: np.ndarray,
    sessions: np.ndarray,
    stop: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks credited to the better and the worse ranker per simulated user, over all the
    user's interleaved lists (each with a fresh team-draft coin)."""
    teams, probs = _drafts(world, better, worse)
    credit = np.zeros((users.size, 2))
    for sl in _chunks(users.size):
        u, s = users[sl], sessions[sl]
        rows = np.repeat(np.arange(u.size), s)
        draw = rng.integers(0, DRAFTS, rows.size)
        t, p = teams[u[rows], draw], probs[u[rows], draw]
        c = cascade_clicks(p, stop, rng)
        for team in (0, 1):
            credit[sl, team] = np.bincount(
                rows, weights=(c & (t == team)).sum(axis=1), minlength=u.size
            )
    return credit[:, 0], credit[:, 1]


def _grid(lo: float, hi: float, step: float) -> list[int]:
    out, v = [], lo
    while v <= hi * 1.0001:
        out.append(int(round(v)))
        v *= step
    return sorted(set(out))


def _first_reach(curve_fn, field: str, start: int, limit: int) -> list[CorrectPreference]:
    """Evaluate on a coarse sqrt(2) grid until ``field`` reaches 0.95, then on a 2**(1/8) grid
    inside the bracket."""
    points = []
    for n in _grid(start, limit, math.sqrt(2)):
        points.append(curve_fn(n))
        if getattr(points[-1], field) >= 0.95:
            lo = points[-2].users if len(points) > 1 else start
            points += [curve_fn(m) for m in _grid(lo, n, 2 ** (1 / 8))[1:-1]]
            break
    return points


def scenario(
    world: World,
    pair: tuple[str, str],
    session_kind: str,
    stop: float,
    log_users: int,
    draws: int,
    seed: int,
    max_users: int,
) -> dict:
    rng = np.random.default_rng(seed)
    sessions_of = world.sessions[session_kind]
    # the truth: expected CTR over the population, every list of every user weighted equally
    weight = sessions_of[world.profiles].astype(float)
    ctr = {}
    for arm in pair:
        p = world.click_model.probabilities(world.profiles, world.lists[arm][world.profiles])
        ctr[arm] = float((expected_clicks(p, stop) * weight).sum() / (K * weight.sum()))
    better, worse = sorted(pair, key=lambda a: -ctr[a])
    lift = ctr[better] / ctr[worse] - 1
    teams, probs = _drafts(world, better, worse)
    flat = probs.reshape(-1, K)
    reach = np.hstack([np.ones((flat.shape[0], 1)), np.cumprod(1 - stop * flat, axis=1)[:, :-1]])
    e = (flat * reach).reshape(probs.shape)
    w_list = np.repeat(weight, DRAFTS).reshape(-1, DRAFTS) / (DRAFTS * weight.sum())
    credit = {
        arm: float(((e * (teams == team)).sum(axis=2) * w_list).sum())
        for team, arm in enumerate((better, worse))
    }

    def draw_users(n: int) -> tuple[np.ndarray, np.ndarray]:
        """Every ML-100K user equally often in each log, so logs differ only by clicks."""
        u = rng.permutation(np.resize(np.arange(world.profiles.size), n))
        return u, sessions_of[world.profiles[u]]

    started = time.perf_counter()
    logged = {}
    for arm in (better, worse):
        u, s = draw_users(log_users)
        logged[arm] = log_ab(world, arm, u, s, stop, rng)
        if arm == better:
            # how much of the A/B metric's per-user variance is users differing, not clicks
            p = world.click_model.probabilities(world.profiles, world.lists[arm][world.profiles])
            expected = expected_clicks(p, stop)[u] * s
            between = {
                "CTR": linearise_ratio(expected, logged[arm][1]).var()
                / linearise_ratio(*logged[arm]).var(),
                "clicks/user": expected.var() / logged[arm][0].var(),
            }
    u, s = draw_users(log_users)
    cb, cw = log_interleaving(world, better, worse, u, s, stop, rng)
    pref = np.sign(cb - cw)
    ones = np.ones(log_users)
    log_ctr = {a: logged[a][0].sum() / logged[a][1].sum() for a in logged}

    curves = {
        "interleaving": lambda n: interleaving_correct_preference(pref, n),
        "interleaving credit": lambda n: paired_correct_preference(cb - cw, max(n, 2), draws, rng),
        "A/B CTR": lambda n: ab_correct_preference(
            logged[better], logged[worse], max(n // 2, 2), draws, rng
        ),
        "A/B clicks/user": lambda n: ab_correct_preference(
            (logged[better][0], ones), (logged[worse][0], ones), max(n // 2, 2), draws, rng
        ),
    }
    limit = max_users
    need = {}
    for name, fn in curves.items():
        cache: dict[int, CorrectPreference] = {}

        def cached(n: int, fn=fn, cache=cache) -> CorrectPreference:
            if n not in cache:
                cache[n] = fn(n)
            return cache[n]

        for field in ("correct", "significant"):
            pts = _first_reach(cached, field, 4, limit)
            need[(name, field)] = users_needed(pts, field)
    wins, ties = float(np.mean(pref > 0)), float(np.mean(pref == 0))
    # the same preferences with each user weighted by lists seen, as CTR weighs them
    w_wins, w_losses = (float(np.sum(s * (pref == v)) / s.sum()) for v in (1, -1))
    print(
        f"{better} vs {worse}, lists per user: {session_kind}, stop after click {stop:g}: expected "
        f"CTR {ctr[better]:.4f} vs {ctr[worse]:.4f} ({lift:+.1%}); log of {log_users:,} users per "
        f"A/B arm and {log_users:,} interleaved: CTR {log_ctr[better]:.4f} vs {log_ctr[worse]:.4f}; "
        f"interleaving: expected credited clicks per list {credit[better]:.4f} vs "
        f"{credit[worse]:.4f}, the log's users prefer {better} {wins:.1%} / none {ties:.1%} / {worse} "
        f"{1 - wins - ties:.1%}; weighted by lists seen {w_wins:.1%} vs {w_losses:.1%} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(
        "  share of the A/B metric's per-user variance from users' differing expected clicks "
        "(interleaving removes it): " + ", ".join(f"{k} {v:.0%}" for k, v in between.items())
    )
    for field, label in (("correct", "95% correct preference"), ("significant", "95% power")):
        il = need[("interleaving", field)]
        parts = []
        for ab in ("A/B CTR", "A/B clicks/user"):
            n = need[(ab, field)]
            ratio = f"{n / il:.1f}x" if n and il else "n/a"
            parts.append(f"{ab} {f'{n:,}' if n else f'> {limit:,}'} ({ratio})")
        il_text = f"{il:,}" if il else f"> {limit:,}"
        credit_n = need[("interleaving credit", field)]
        credit_text = f"{credit_n:,}" if credit_n else f"> {limit:,}"
        print(
            f"  {label}: interleaving {il_text} users (summed credit, weighing users by their "
            f"clicks: {credit_text}); " + "; ".join(parts)
        )
    return {"better": better, "worse": worse, "lift": lift, "need": need}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs", default="als:popularity,als:ease,als:itemknn", help="comma-separated a:b"
    )
    parser.add_argument("--sessions", default="days,pages", help="lists per user: days, pages")
    parser.add_argument("--stop", default="0,0.5", help="stop-after-click probabilities")
    parser.add_argument("--log-users", type=int, default=100_000, help="logged users per method")
    parser.add_argument(
        "--max-users", type=int, help="largest experiment tried (default 4x --log-users)"
    )
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap draws per size (A/B)")
    parser.add_argument("--path", type=Path, help="ML-100K folder (default: shared datasets)")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit("--pairs takes a:b items, e.g. als:popularity")
    kinds = args.sessions.split(",")
    if unknown := set(kinds) - {"days", "pages"}:
        raise SystemExit(f"unknown --sessions {sorted(unknown)}; choose days or pages")
    world = load_world(args.path, args.seed, {m for p in pairs for m in p})
    print(
        f"Users for 95% correct preference (bootstrap from the log, {args.draws} draws per A/B "
        "size, exact for interleaving); users = everyone in the experiment (A/B: half per arm); "
        "ratio = A/B users / interleaving users"
    )
    results = []
    for pair in pairs:
        for kind in kinds:
            for stop in (float(v) for v in args.stop.split(",")):
                results.append(
                    scenario(
                        world,
                        pair,
                        kind,
                        stop,
                        args.log_users,
                        args.draws,
                        args.seed,
                        args.max_users or 4 * args.log_users,
                    )
                )
    return results


if __name__ == "__main__":
    main()
