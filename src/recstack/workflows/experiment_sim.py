"""Rehearse an A/B test on the store's own data before real users see it
(``recstack experiments simulate``).

The store's interactions are split per user (stratified, 75/25); each arm's model family is
fitted on the 75%, and simulated users — drawn from the users with held-out items — click by
the held-out click model of ``experiments.simulate`` (a held-out item shown at position j is
clicked with probability 0.5 / (j + 1), any other item 0.02 / (j + 1)). The arms' samples go
through the same ``analyse_experiment`` as a live experiment's, so the rehearsal shows the lift
to expect and the users needed to detect it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recstack.data.splits import stratified_split
from recstack.errors import ConfigError
from recstack.experiments.analysis import analyse_experiment
from recstack.experiments.simulate import ClickModel, model_policy, simulate_ab
from recstack.models.catalog import MODELS, create_model
from recstack.progress import track
from recstack.settings import Settings

K = 10


def simulate_experiment(
    store: Any,
    settings: Settings,
    arms: dict[str, str],
    *,
    users: int = 5000,
    sessions: int = 3,
    seed: int = 42,
    progress: bool = False,
) -> dict[str, Any]:
    """Analysis of an offline A/B of ``arms`` (arm name -> model family, the first is the
    control) over ``users`` simulated users with ``sessions`` lists each."""
    unknown = [family for family in arms.values() if family not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    if len(arms) < 2:
        raise ConfigError("a simulated experiment needs at least two arms")
    dataset = store.snapshot(settings.weighting())
    train, test = stratified_split(dataset, ratio=0.75, seed=seed)
    click_model = ClickModel.from_heldout(test, k=K)
    profiles = np.flatnonzero(np.diff(click_model.relevant.indptr) > 0)
    if profiles.size == 0:
        raise ConfigError("no user has held-out interactions: the store has too little data")
    policies = {}
    for name in track(list(arms), "fitting the arms' models", enabled=progress):
        model = create_model(arms[name]).fit(train)
        policies[name] = model_policy(model, train.matrix, K)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(profiles, users, replace=users > profiles.size)
    activity = np.diff(train.matrix.indptr).astype(float)
    samples = simulate_ab(policies, drawn, click_model, rng, sessions=sessions, pre=activity[drawn])
    names = list(arms)
    result = analyse_experiment(samples, dict.fromkeys(names, 1.0), names[0])
    return {"arms_models": arms, "users": users, "sessions": sessions, **result}
