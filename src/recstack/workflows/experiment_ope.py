"""Off-policy evaluation of a model from an exploring experiment's logs (``recstack experiments
ope``): what CTR per slot would another model have earned on the same users?

The logs of an experiment with exploration on hold, per served list, the items shown, their
marginal propensities and the positions clicked. The target model ranks each logged request as
the server would have when the list was served: from the user's history at that time (a click
on a list joins the history after it; counted, it would keep the clicked item out of the
target's list), folding in users with events newer than its version. IPS, SNIPS and doubly
robust (with a position-based click model fitted to the logs) estimate its CTR per slot
(``experiments.ope``). Lists logged without propensities (no exploration) cannot be used and
are counted as skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recstack.errors import ConfigError
from recstack.experiments.config import POPULARITY, validated
from recstack.experiments.ope import (
    deterministic_target_prob,
    doubly_robust,
    fit_position_based_model,
    ips,
    snips,
)
from recstack.progress import track
from recstack.settings import Settings
from recstack.workflows.experiments import get_experiment


def logged_arrays(store: Any, key: str) -> dict[str, Any]:
    """The experiment's exploring lists as arrays: users and times served ``(lists,)``, items
    (external ids), propensities and clicks ``(lists, k)``; lists of another length or without
    propensities are skipped."""
    experiment = validated(get_experiment(store, key))
    rows = store.exposures.logged(key, experiment.click_events)
    usable = [r for r in rows if r["items"] and all("propensity" in i for i in r["items"])]
    if not usable:
        raise ConfigError(
            f"experiment {key!r} logged no propensities: run it with exploration "
            "(epsilon or plackett_luce) to evaluate other models off-policy"
        )
    k = max(len(r["items"]) for r in usable)
    usable = [r for r in usable if len(r["items"]) == k]
    items = np.array([[i["item_id"] for i in r["items"]] for r in usable], dtype=object)
    props = np.array([[i["propensity"] for i in r["items"]] for r in usable], dtype=float)
    clicks = np.zeros(items.shape)
    for n, row in enumerate(usable):
        clicks[n, [p for p in row["clicked"] if p < k]] = 1.0
    users = [r["user_id"] for r in usable]
    served = np.array([r["served_at"] for r in usable], dtype=float)
    return {"users": users, "served_at": served, "items": items, "props": props, "clicks": clicks,
            "skipped": len(rows) - len(usable)}  # fmt: skip


def target_lists(
    store: Any,
    settings: Settings,
    target: str,
    users: list[str],
    k: int,
    served_at: np.ndarray | None = None,
    clicked_after: list[set[str]] | None = None,
) -> Any:
    """The lists ``target`` (``popularity`` or a registry reference) ranks for ``users``, as
    external item ids ``(len(users), k)`` (None where it ranks fewer); with ``served_at``
    (epoch seconds per row), from each user's history at that time (``histories_before``, the
    items of ``clicked_after`` known to come later), and as the server ranks: a user with
    events newer than the model's version is folded in from that history, not given their
    learned vector."""
    dataset = store.snapshot(settings.weighting())
    registered = float("inf")  # when the model's version was registered (epoch seconds)
    if target == POPULARITY:
        from recstack.models.catalog import create_model

        model = create_model("popularity").fit(dataset)
    else:
        from datetime import datetime

        from recstack.registry import ModelRegistry

        name, _, rest = target.rpartition(":")
        name = name or settings.model_name
        registry = ModelRegistry(settings)
        if rest.isdigit():
            model, info = registry.load_with_info(name, version=int(rest))
        else:
            model, info = registry.load_with_info(name, alias=rest)
        registered = datetime.fromisoformat(info.created_at).timestamp()
    rows = dataset.users.indices(users)
    known = dataset.matrix[np.where(rows >= 0, rows, 0)].tocoo()
    newest = np.full(len(users), -np.inf)
    if served_at is not None:
        after = None
        if clicked_after is not None:
            after = [dataset.items.indices(sorted(c)) for c in clicked_after]
            after = [a[a >= 0] for a in after]
        known, newest = histories_before(dataset, rows, np.asarray(served_at, dtype=float), after)
    columns = model.items.indices(dataset.items.externals(known.col))
    keep = (columns >= 0) & (rows[known.row] >= 0)
    histories = sp.csr_matrix(
        (known.data[keep], (known.row[keep], columns[keep])),
        shape=(len(users), len(model.items.ids)),
    )
    model_users = model.users.indices(users) if getattr(model, "users", None) else None
    if model_users is not None:
        model_users = np.where(newest >= np.floor(registered), -1, model_users)
    idx, _ = model.recommend(histories, k, users=model_users)
    out = np.full((len(users), k), None, dtype=object)
    for n, row in enumerate(idx):
        valid = row[row >= 0]
        out[n, : len(valid)] = model.items.externals(valid)
    return out


def clicked_since(
    users: list[str], served_at: np.ndarray, items: np.ndarray, clicks: np.ndarray
) -> list[set[str]]:
    """Per list, the items its user clicked on it or on a list served later: events that came
    after it was served, whatever second they are stamped with.

    >>> out = clicked_since(["a", "a", "b"], np.array([1.0, 2.0, 1.5]),
    ...                     np.array([["x", "y"], ["z", "w"], ["x", "y"]], dtype=object),
    ...                     np.array([[1, 0], [0, 1], [0, 0]]))
    >>> [sorted(c) for c in out]  # a's first list: x on it, w on the later one
    [['w', 'x'], ['w'], []]
    """
    out: list[set[str]] = [set() for _ in users]
    running: dict[str, set[str]] = {}
    for n in sorted(range(len(users)), key=lambda i: -served_at[i]):  # latest first
        mine = running.setdefault(users[n], set())
        mine.update(items[n][np.asarray(clicks[n]) > 0].tolist())
        out[n] = set(mine)
    return out


def histories_before(
    dataset: Any,
    rows: np.ndarray,
    served_at: np.ndarray,
    after: list[np.ndarray] | None = None,
) -> tuple[sp.coo_matrix, np.ndarray]:
    """One history per entry of ``rows`` (dataset user indices, -1 for none): that user's
    events up to the whole second ``served_at`` falls in, summed per item, and the time of the
    newest of them (``-inf`` for none). Event times are whole seconds, so that second also
    holds what came just after the list (a click on it): events in it on the items of
    ``after`` (per row, item indices known to come later) are left out.

    >>> import pandas as pd
    >>> from recstack.data.dataset import Dataset
    >>> events = pd.DataFrame({"user_id": ["a"] * 4, "item_id": ["x", "y", "x", "z"],
    ...                        "event_type": "view", "timestamp": [10, 20, 30, 30]})
    >>> d = Dataset.from_frame(events)
    >>> h, newest = histories_before(d, np.array([0, 0, -1]), np.array([20.5, 30.2, 99.0]),
    ...                              after=[np.array([1]), np.array([2]), np.array([], int)])
    >>> h.toarray().tolist()  # y (item 1) came after the first list; z after the second
    [[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    >>> newest.tolist()
    [10.0, 30.0, -inf]
    """
    users = np.asarray(rows)
    by_user = np.argsort(dataset.user_idx, kind="stable")
    starts = np.searchsorted(dataset.user_idx[by_user], users, side="left")
    ends = np.searchsorted(dataset.user_idx[by_user], users, side="right")
    ends = np.where(users >= 0, ends, starts)
    counts = ends - starts
    out_row = np.repeat(np.arange(len(users)), counts)
    event = by_user[
        np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    ]
    second = np.floor(served_at)[out_row]
    stamp = dataset.timestamp[event]
    keep = stamp <= second
    if after is not None:
        later = np.concatenate(
            [n * dataset.n_items + np.asarray(a, dtype=np.int64) for n, a in enumerate(after)]
            + [np.zeros(0, np.int64)]
        )
        pair = out_row * dataset.n_items + dataset.item_idx[event]
        keep &= ~((stamp == second) & np.isin(pair, later))
    m = sp.coo_matrix(
        (dataset.weight[event[keep]], (out_row[keep], dataset.item_idx[event[keep]])),
        shape=(len(users), dataset.n_items),
        dtype=np.float32,
    )
    m.sum_duplicates()
    newest = np.full(len(users), -np.inf)
    np.maximum.at(newest, out_row[keep], stamp[keep].astype(float))
    return m, newest


def ope_estimates(
    store: Any, settings: Settings, key: str, targets: list[str], *, progress: bool = False
) -> dict[str, Any]:
    """The logging policy's own CTR per slot, and IPS / SNIPS / DR estimates for each target."""
    logs = logged_arrays(store, key)
    items, props, clicks = logs["items"], logs["props"], logs["clicks"]
    catalogue = {item: n for n, item in enumerate(dict.fromkeys(items.ravel().tolist()))}
    coded = np.vectorize(lambda i: catalogue[i])(items)
    attract, exam = fit_position_based_model(coded, clicks, len(catalogue))
    q_logged = attract[coded] * exam
    later = clicked_since(logs["users"], logs["served_at"], items, clicks)
    out: dict[str, Any] = {
        "lists": int(items.shape[0]),
        "skipped": logs["skipped"],
        "logged_ctr_per_slot": float(clicks.mean()),
        "targets": {},
    }
    for target in track(targets, "off-policy estimates", enabled=progress):
        lists = target_lists(
            store, settings, target, logs["users"], items.shape[1], logs["served_at"], later
        )
        t_prob = deterministic_target_prob(items, lists)
        t_coded = np.vectorize(lambda i: catalogue.get(i, -1))(lists)
        q_target = np.where(t_coded >= 0, attract[np.maximum(t_coded, 0)], 0.0) * exam
        estimates = {
            "ips": ips(clicks, t_prob, props),
            "snips": snips(clicks, t_prob, props),
            "dr": doubly_robust(clicks, t_prob, props, q_logged, q_target),
        }
        out["targets"][target] = {
            name: {"ctr_per_slot": e.value, "se": e.se} for name, e in estimates.items()
        }
    return out
