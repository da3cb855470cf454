"""The ML-100K parts of ``ab_simulation.py``: popularity against ALS through the click model.

``load_ml100k`` fits both models on the 75% training split and builds the click model from the
held-out 25%; ``offline_ab``, ``power_curves`` (A/B against interleaving) and ``ope_figures``
print their figures; ``drive_server`` runs the same A/B against a live server over HTTP.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recstack.data.dataset import Dataset
from recstack.data.splits import stratified_split
from recstack.data.weights import DEFAULT_EVENT_WEIGHTS, EventWeighting
from recstack.experiments.analysis import ArmSample, analyse_experiment
from recstack.experiments.interleaving import preference_test, team_draft
from recstack.experiments.ope import (
    deterministic_target_prob,
    doubly_robust,
    fit_position_based_model,
    ips,
    plackett_luce_marginals,
    snips,
)
from recstack.experiments.power import sample_size_for_lift
from recstack.experiments.simulate import ClickModel, clicks_for_ids, simulate_ab
from recstack.experiments.stats import linearise_ratio, welch_from_moments
from recstack.models.catalog import create_model
from recstack.workflows.configs import load_config

ROOT = Path(__file__).resolve().parent
DATASETS = ROOT.parent.parent / "shared" / "datasets"
K = 10


@dataclass
class World:
    """ML-100K split, fitted models' lists per user, the click model and the eligible users."""

    train: Dataset
    click_model: ClickModel
    lists: dict[str, np.ndarray]
    candidates: np.ndarray
    profiles: np.ndarray
    activity: np.ndarray


def load_ml100k(path: Path | None, seed: int) -> World:
    from recstack.data.loaders import load_movielens

    data = load_movielens(path or DATASETS / "ml-100k")
    binary = EventWeighting(type_weight=dict.fromkeys(DEFAULT_EVENT_WEIGHTS, 1.0), use_value=())
    ds = Dataset.from_frame(data.interactions, items=data.items, weighting=binary)
    train, test = stratified_split(ds, ratio=0.75, seed=seed)
    _, als_params = load_config(ROOT / "configs" / "als.toml")
    histories = train.matrix
    users = np.arange(train.n_users)
    popularity = create_model("popularity").fit(train)
    als = create_model("als", **als_params).fit(train)
    candidates = als.recommend(histories, 2 * K, users=users)[0]
    lists = {
        "popularity": popularity.recommend(histories, K, users=users)[0],
        "als": candidates[:, :K],
    }
    click_model = ClickModel.from_heldout(test.matrix, k=K)
    profiles = np.flatnonzero(np.diff(click_model.relevant.indptr) > 0)
    activity = np.diff(histories.indptr).astype(float)
    print(
        f"ML-100K: {train.n_users} users, {train.n_items} items; click model: examination "
        f"1/position, click 0.5 on a held-out item, 0.02 otherwise; {profiles.size} users with "
        "held-out items are the profiles simulated users are drawn from"
    )
    return World(train, click_model, lists, candidates, profiles, activity)


def _policy(lists: np.ndarray):
    return lambda users: lists[users]


def offline_ab(world: World, per_arm: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    users = rng.choice(world.profiles, 2 * per_arm)
    policies = {name: _policy(lists) for name, lists in world.lists.items()}
    samples = simulate_ab(
        policies, users, world.click_model, rng, sessions=3, pre=world.activity[users]
    )
    result = analyse_experiment(
        samples, {"popularity": 1, "als": 1}, "popularity", guardrails=["conversion"]
    )
    ctr = {a: result["arms"][a]["metrics"]["ctr"] for a in samples}
    primary = result["comparisons"][0]
    control = samples["popularity"]
    lin = linearise_ratio(control.clicks, control.exposures)
    needed = sample_size_for_lift(
        ctr["popularity"]["value"], float(lin.std(ddof=1)), primary["lift"]
    )
    needed_15 = sample_size_for_lift(ctr["popularity"]["value"], float(lin.std(ddof=1)), 0.15)
    print(
        f"Offline A/B, popularity vs ALS: {per_arm:,} simulated users per arm target, 3 lists each"
    )
    for arm in samples:
        c = ctr[arm]
        print(
            f"  {arm}: {result['arms'][arm]['users']:,} users, CTR {c['value']:.4f} "
            f"[{c['ci'][0]:.4f}, {c['ci'][1]:.4f}]"
        )
    print(
        f"  CTR lift of ALS over popularity {primary['lift']:+.1%} (95% CI {primary['lift_ci'][0]:+.1%}"
        f" .. {primary['lift_ci'][1]:+.1%}), p = {primary['p_value']:.3g}, CUPED {primary['cuped']}; "
        f"SRM p = {result['srm']['p_value']:.3f}"
    )
    print(
        f"  users per arm for 80% power: {needed:,} at the observed lift, {needed_15:,} for +15%; "
        f"decision: {result['decision']['action']} ({result['decision']['reason']})"
    )
    verdict = "reached" if primary["lift_ci"][0] > 0.15 else "not shown"
    print(f"  seed 001's '+15% CTR over popularity': measured {primary['lift']:+.1%}, {verdict}")


def with_clickiness(world: World, shape: float, seed: int) -> World:
    """The same world with users differing in how readily they click: a Gamma(shape, 1/shape)
    multiplier per user (mean 1; shape 1, the exponential, spans ~22x from 10th to 90th centile)."""
    if shape <= 0:
        return world
    scale = np.random.default_rng(seed).gamma(shape, 1 / shape, world.click_model.relevant.shape[0])
    cm = world.click_model
    clicky = ClickModel(cm.relevant, cm.examination, cm.click_relevant, cm.click_noise, scale)
    return World(world.train, clicky, world.lists, world.candidates, world.profiles, world.activity)


def _ab_power(
    world: World, total: int, runs: int, rng: np.random.Generator, sessions: int
) -> tuple[float, float]:
    """Share of simulated A/B tests (CTR, Welch on user-level rows) that pick ALS."""
    probs = {
        a: world.click_model.probabilities(world.profiles, world.lists[a]) for a in world.lists
    }
    hits = right_sign = 0
    for _ in range(runs):
        n = total // 2
        stats = []
        for arm in ("popularity", "als"):
            rows = rng.integers(0, world.profiles.size, n)
            p = probs[arm][rows]
            clicks = sum((rng.random(p.shape) < p).sum(axis=1) for _ in range(sessions))
            lin = linearise_ratio(clicks, np.full(n, float(K * sessions)))
            stats.append((lin.mean(), lin.var(ddof=1) / n))
        (mc, vc), (mt, vt) = stats
        hits += welch_from_moments(mt, vt, n, mc, vc, n).p_value < 0.05 and mt > mc
        right_sign += mt > mc
    return hits / runs, right_sign / runs


def _interleaved(world: World, draws: int, rng: np.random.Generator):
    teams = np.zeros((world.profiles.size, draws, K), dtype=np.int8)
    probs = np.zeros((world.profiles.size, draws, K))
    for row, u in enumerate(world.profiles):
        for d in range(draws):
            out = team_draft(world.lists["popularity"][u], world.lists["als"][u], K, rng)
            teams[row, d] = out.teams
            probs[row, d] = world.click_model.probabilities(np.array([u]), np.array([out.items]))[0]
    return teams, probs


def _il_power(
    teams: np.ndarray,
    probs: np.ndarray,
    total: int,
    runs: int,
    rng: np.random.Generator,
    sessions: int,
) -> tuple[float, float]:
    """Share of simulated interleaving tests (sign test over users) that pick ALS."""
    hits = right_sign = 0
    for _ in range(runs):
        rows = rng.integers(0, teams.shape[0], total)
        ca = np.zeros(total)
        cb = np.zeros(total)
        for _ in range(sessions):
            draw = rng.integers(0, teams.shape[1], total)
            t, p = teams[rows, draw], probs[rows, draw]
            clicked = rng.random(p.shape) < p
            # credit_clicks for every user at once: clicks on each team's items
            ca += (clicked & (t == 0)).sum(axis=1)
            cb += (clicked & (t == 1)).sum(axis=1)
        res = preference_test(ca, cb)
        hits += res.p_value < 0.05 and res.winner == "b"
        right_sign += res.winner == "b"
    return hits / runs, right_sign / runs


def power_curves(
    world: World, seed: int, runs: int = 200, label: str = "", sessions: int = 1
) -> None:
    """Users needed until 95% of simulated experiments name ALS the winner, by each method.

    Two criteria: significant (p < 0.05) in ALS's favour, and the right sign of the difference.
    """
    rng = np.random.default_rng(seed)
    teams, probs = _interleaved(world, 16, rng)
    grid = [round(4 * 2 ** (i / 2)) for i in range(0, 24)]
    need: dict[str, int | None] = dict.fromkeys(("ab", "ab_sign", "il", "il_sign"))
    print(
        f"A/B vs interleaving (popularity vs ALS){label}, {sessions} list(s) per user, "
        f"{runs} simulated experiments per size"
    )
    print("  users total | A/B: significant & correct, right sign | interleaving: the same")
    for total in grid:
        ab, ab_sign = _ab_power(world, total, runs, rng, sessions)
        il, il_sign = _il_power(teams, probs, total, runs, rng, sessions)
        print(f"  {total:>11,} | {ab:>6.1%}, {ab_sign:>6.1%} | {il:>6.1%}, {il_sign:>6.1%}")
        for key, value in (("ab", ab), ("ab_sign", ab_sign), ("il", il), ("il_sign", il_sign)):
            if need[key] is None and value >= 0.95:
                need[key] = total
        if all(need.values()):
            break
    for crit, a, i in (("significant", "ab", "il"), ("right sign", "ab_sign", "il_sign")):
        if need[a] and need[i]:
            ratio = need[a] / need[i]
            print(
                f"  95% correct preference ({crit}): interleaving {need[i]:,} users, A/B "
                f"{need[a]:,}: {ratio:.1f}x fewer (>= 10x: {'yes' if ratio >= 10 else 'NO'})"
            )
        else:
            print(f"  95% ({crit}) not reached in the grid: A/B {need[a]}, interleaving {need[i]}")


def ope_figures(
    world: World, seed: int, impressions: int = 100_000, temperature: float = 2.0
) -> None:
    """Log Plackett-Luce exploration over ALS's top 20, estimate two target policies' CTR."""
    rng = np.random.default_rng(seed)
    n_cand = world.candidates.shape[1]
    logits = -np.arange(n_cand) / temperature  # the logging policy explores by ALS rank
    marg = plackett_luce_marginals(logits, K, rng, n_samples=200_000)
    users = rng.choice(world.profiles, impressions)
    ranks = np.argsort(-(logits + rng.gumbel(size=(impressions, n_cand))), axis=1)[:, :K]
    cand = world.candidates[users]
    items = np.take_along_axis(cand, ranks, axis=1)
    props = marg[ranks, np.arange(K)]
    clicks = world.click_model.clicks(users, items, rng)
    attr, exam = fit_position_based_model(items, clicks, world.train.n_items)
    popularity = np.asarray(world.train.item_popularity, dtype=float)
    targets = {
        "ALS greedy top-10": np.tile(np.arange(K), (world.candidates.shape[0], 1)),
        "popularity re-rank of ALS top-20": np.argsort(
            -popularity[world.candidates], axis=1, kind="stable"
        )[:, :K],
    }
    print(
        f"Off-policy evaluation: {impressions:,} impressions logged by Plackett-Luce over ALS's top "
        f"{n_cand} (temperature {temperature}), logged CTR {clicks.mean():.4f}"
    )
    for name, target_ranks in targets.items():
        t_ranks = target_ranks[users]
        t_items = np.take_along_axis(cand, t_ranks, axis=1)
        t_prob = deterministic_target_prob(ranks, t_ranks)
        fresh = rng.choice(world.profiles, impressions)
        f_items = np.take_along_axis(world.candidates[fresh], target_ranks[fresh], axis=1)
        on_policy = float(world.click_model.clicks(fresh, f_items, rng).mean())
        estimates = {
            "IPS": ips(clicks, t_prob, props),
            "SNIPS": snips(clicks, t_prob, props),
            "DR": doubly_robust(clicks, t_prob, props, attr[items] * exam, attr[t_items] * exam),
        }
        parts = ", ".join(
            f"{k} {e.value:.4f} ({(e.value - on_policy) / on_policy:+.1%})"
            for k, e in estimates.items()
        )
        worst = max(abs(e.value - on_policy) / on_policy for e in estimates.values())
        print(
            f"  {name}: on-policy simulated CTR {on_policy:.4f}; {parts}; within 10%: "
            f"{'yes' if worst <= 0.10 else 'NO'}"
        )


def drive_server(
    url: str,
    world: World,
    api_key: str | None,
    seed: int,
    users: int = 2000,
    weights: dict[str, float] | None = None,
) -> dict:
    """Ask a live server for lists, click by the click model, post the clicks as events with the
    list's ``recommendation_id``, and analyse the arms the server assigned (its ``experiment``)."""
    import httpx

    rng = np.random.default_rng(seed)
    headers = {"X-API-Key": api_key} if api_key else {}
    user_index = {uid: i for i, uid in enumerate(world.train.users.to_list())}
    item_index = {iid: i for i, iid in enumerate(world.train.items.to_list())}
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_user: dict[tuple[str, str], list[float]] = {}
    key = None
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for u in rng.choice(world.profiles, users, replace=users > world.profiles.size):
            uid = world.train.users.external(int(u))
            body = client.get(f"/v1/users/{uid}/recommendations", params={"k": K})
            body.raise_for_status()
            rec = body.json()
            arm = (rec.get("experiment") or {}).get("arm")
            if arm is None:
                continue
            key = rec["experiment"]["key"]
            item_ids = [it["item_id"] for it in rec["items"]]
            clicked = clicks_for_ids(world.click_model, user_index, item_index, uid, item_ids, rng)
            events = [
                {
                    "user_id": uid,
                    "item_id": i,
                    "event_type": "click",
                    "recommendation_id": rec["recommendation_id"],
                }
                for i, c in zip(item_ids, clicked, strict=True)
                if c
            ]
            if events:
                client.post("/v1/events", json={"events": events}).raise_for_status()
            stats = per_user.setdefault((arm, uid), [0.0, 0.0])
            stats[0] += len(item_ids)
            stats[1] += float(clicked.sum())
        server = client.get(f"/v1/experiments/{key}/results") if key else None
    for (arm, _), (shown, clicks) in per_user.items():
        rows[arm]["exposures"].append(shown)
        rows[arm]["clicks"].append(clicks)
    samples = {
        arm: ArmSample(
            np.array(r["exposures"]),
            np.array(r["clicks"]),
            (np.array(r["clicks"]) > 0) * 1.0,
            np.array(r["clicks"]),
        )
        for arm, r in rows.items()
    }
    if len(samples) < 2:
        raise SystemExit(
            f"the server assigned {len(samples)} experiment arm(s); start an experiment first"
        )
    control = "popularity" if "popularity" in samples else sorted(samples)[0]
    result = analyse_experiment(samples, weights or dict.fromkeys(samples, 1.0), control)
    for c in result["comparisons"]:
        print(
            f"HTTP A/B ({url}, experiment {key}): {c['arm']} vs {control} CTR lift {c['lift']:+.1%} "
            f"[{c['lift_ci'][0]:+.1%}, {c['lift_ci'][1]:+.1%}], p = {c['p_value']:.3g}, "
            f"decision {result['decision']['action']}"
        )
    if server is not None and server.status_code == 200:
        print(f"  server's own results: decision {server.json().get('decision')}")
    return result
