"""Synthetic event windows for the monitoring loop: a steady stream, and one that drifts.

Users belong to topics and mostly pick items of their own topic, with Zipf-like popularity, so
a factor model learns something real. ``window_frame`` draws one window of events; with
``shift=True`` the popularity order inside each topic is reversed (yesterday's hits fade,
the tail rises) and ``new_item_share`` of the events go to items that did not exist before.
Tests and ``benchmarks/mlops_loop.py`` share these generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EVENT_TYPES = ("view", "click", "purchase")
EVENT_MIX = (0.8, 0.15, 0.05)


@dataclass(frozen=True)
class World:
    """Who exists: users with a topic each, catalogue items (old and new) with a topic each."""

    n_users: int = 300
    n_items: int = 150
    n_new_items: int = 40
    n_topics: int = 5
    seed: int = 0

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def user_topics(self) -> np.ndarray:
        return np.random.default_rng(self.seed).integers(0, self.n_topics, self.n_users)

    def items_frame(self, with_new: bool = True) -> pd.DataFrame:
        """The catalogue (``item_id, title, text, attributes, active``)."""
        ids = [f"i{i}" for i in range(self.n_items)]
        topics = [i % self.n_topics for i in range(self.n_items)]
        if with_new:
            ids += [f"n{j}" for j in range(self.n_new_items)]
            topics += [j % self.n_topics for j in range(self.n_new_items)]
        return pd.DataFrame(
            {
                "item_id": ids,
                "title": [f"Item {i}" for i in ids],
                "text": [f"topic {t}" for t in topics],
                "attributes": [{"genres": [f"topic{t}"]} for t in topics],
                "active": [True] * len(ids),
            }
        )


def window_frame(
    world: World,
    *,
    start: int,
    events_per_user: int = 12,
    span_seconds: int = 86_400,
    shift: bool = False,
    new_item_share: float = 0.0,
    seed: int = 1,
    prefix: str = "w",
) -> pd.DataFrame:
    """One window of events (canonical interaction columns) starting at ``start``.

    Every user makes ``events_per_user`` events at times spread over ``span_seconds``; about
    85% are in their own topic. ``shift`` reverses popularity inside each topic;
    ``new_item_share`` of the events go to the world's new items (by topic, uniformly).
    """
    rng = np.random.default_rng(seed)
    topics = world.user_topics()
    item_topic = np.arange(world.n_items) % world.n_topics
    rank_in_topic = np.arange(world.n_items) // world.n_topics
    if shift:
        rank_in_topic = rank_in_topic.max() - rank_in_topic
    popularity = 1.0 / (1.0 + rank_in_topic) ** 1.1
    new_topic = np.arange(world.n_new_items) % world.n_topics
    rows = []
    for u in range(world.n_users):
        own = item_topic == topics[u]
        p = popularity * np.where(own, 20.0, 1.0)
        p = p / p.sum()
        k = events_per_user
        n_new = rng.binomial(k, new_item_share) if new_item_share > 0 and world.n_new_items else 0
        old = rng.choice(world.n_items, size=k - n_new, p=p)
        chosen = [f"i{i}" for i in old]
        if n_new:
            candidates = np.flatnonzero(new_topic == topics[u])
            if not candidates.size:
                candidates = np.arange(world.n_new_items)
            chosen += [f"n{j}" for j in rng.choice(candidates, size=n_new)]
        times = start + np.sort(rng.integers(0, span_seconds, size=k))
        kinds = rng.choice(len(EVENT_TYPES), size=k, p=EVENT_MIX)
        for j, (item, ts, kind) in enumerate(zip(chosen, times, kinds, strict=True)):
            rows.append((f"{prefix}-{u}-{j}", f"u{u}", item, EVENT_TYPES[kind], np.nan, int(ts)))
    frame = pd.DataFrame(
        rows, columns=["event_id", "user_id", "item_id", "event_type", "value", "timestamp"]
    )
    frame["context"] = None
    return frame
