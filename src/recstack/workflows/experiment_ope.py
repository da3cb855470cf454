"""Off-policy evaluation of a model from an exploring experiment's logs (``recstack experiments
ope``): what CTR per slot would another model have earned on the same users?

The logs of an experiment with exploration on hold, per served list, the items shown, their
marginal propensities and the positions clicked. The target model ranks the same users' lists
from their stored histories; IPS, SNIPS and doubly robust (with a position-based click model
fitted to the logs) estimate its CTR per slot (``experiments.ope``). Lists logged without
propensities (no exploration) cannot be used and are counted as skipped.
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
    """The experiment's exploring lists as arrays: users, items (external ids), propensities
    and clicks, each ``(lists, k)``; lists of another length or without propensities are
    skipped."""
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
    return {"users": users, "items": items, "props": props, "clicks": clicks,
            "skipped": len(rows) - len(usable)}  # fmt: skip


def target_lists(store: Any, settings: Settings, target: str, users: list[str], k: int) -> Any:
    """The lists ``target`` (``popularity`` or a registry reference) ranks for ``users``, as
    external item ids ``(len(users), k)`` (None where it ranks fewer)."""
    dataset = store.snapshot(settings.weighting())
    if target == POPULARITY:
        from recstack.models.catalog import create_model

        model = create_model("popularity").fit(dataset)
    else:
        from recstack.registry import ModelRegistry

        name, _, rest = target.rpartition(":")
        name = name or settings.model_name
        registry = ModelRegistry(settings)
        if rest.isdigit():
            model = registry.load(name, version=int(rest))
        else:
            model = registry.load(name, alias=rest)
    rows = dataset.users.indices(users)
    known = dataset.matrix[np.where(rows >= 0, rows, 0)].tocoo()
    columns = model.items.indices(dataset.items.externals(known.col))
    keep = (columns >= 0) & (rows[known.row] >= 0)
    histories = sp.csr_matrix(
        (known.data[keep], (known.row[keep], columns[keep])),
        shape=(len(users), len(model.items.ids)),
    )
    model_users = model.users.indices(users) if getattr(model, "users", None) else None
    idx, _ = model.recommend(histories, k, users=model_users)
    out = np.full((len(users), k), None, dtype=object)
    for n, row in enumerate(idx):
        valid = row[row >= 0]
        out[n, : len(valid)] = model.items.externals(valid)
    return out


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
    out: dict[str, Any] = {
        "lists": int(items.shape[0]),
        "skipped": logs["skipped"],
        "logged_ctr_per_slot": float(clicks.mean()),
        "targets": {},
    }
    for target in track(targets, "off-policy estimates", enabled=progress):
        lists = target_lists(store, settings, target, logs["users"], items.shape[1])
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
