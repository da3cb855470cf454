"""Small datasets with a planted structure, for tests that need a model to learn something."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recstack.data.dataset import Dataset


def planted_frame(
    n_users: int = 200,
    n_items: int = 120,
    n_clusters: int = 4,
    per_user: int = 15,
    seed: int = 0,
    rated: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions and items where users mostly pick items of their own cluster.

    Returns ``(interactions, items)`` frames in the canonical schema (see ``data.schema``);
    items carry a ``genres`` attribute naming their cluster and a ``difficulty`` number. With
    ``rated`` the events are ``rate`` events: 4-5 stars for the user's own cluster, 1-3 for
    the others, which users then pick more often (explicit feedback carries the signal).
    """
    rng = np.random.default_rng(seed)
    user_cluster = rng.integers(0, n_clusters, n_users)
    item_cluster = np.arange(n_items) % n_clusters
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.5
    rows = []
    for u in range(n_users):
        own = item_cluster == user_cluster[u]
        p = pop * np.where(own, 2.0 if rated else 8.0, 1.0)
        chosen = rng.choice(n_items, size=per_user, replace=False, p=p / p.sum())
        for j, i in enumerate(chosen):
            kind, value = "view", np.nan
            if rated:
                kind, value = "rate", float(rng.integers(4, 6) if own[i] else rng.integers(1, 4))
            rows.append((f"e{u}-{i}", f"u{u}", f"i{i}", kind, value, 1_600_000_000 + 60 * j))
    inter = pd.DataFrame(
        rows, columns=["event_id", "user_id", "item_id", "event_type", "value", "timestamp"]
    )
    inter["context"] = None
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"Item {i} of topic {item_cluster[i]}" for i in range(n_items)],
            "text": [f"A course about topic {item_cluster[i]} number {i}" for i in range(n_items)],
            "attributes": [
                {"genres": [f"topic{item_cluster[i]}"], "difficulty": int(i % 3)}
                for i in range(n_items)
            ],
            "active": True,
        }
    )
    return inter, items


def planted_dataset(**kwargs: int | bool) -> Dataset:
    """``planted_frame`` as a Dataset (item metadata included)."""
    inter, items = planted_frame(**kwargs)
    return Dataset.from_frame(inter, items=items)
