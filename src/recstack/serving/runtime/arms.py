"""Serving a list through the experiment a user is in: the arm's slot, interleaving or exploration.

Every read route (recommendations, similar items, search) calls one of these instead of the
engine directly, so each list is assigned the same way and logged once:

- ``ab``: the list comes from the arm's slot;
- ``interleave``: both arms rank, team draft merges them (``experiments.interleaving``), and
  each logged item carries the arm that contributed it (clicks are credited to it);
- exploration (``epsilon`` or ``plackett_luce``): the arm ranks ``top_n`` candidates, the
  shown list is sampled from them (``experiments.ope``) and each item logs its propensity.

An explicit ``slot`` (admins, tests) bypasses assignment: ``experiment`` is then null.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from recstack.experiments.assignment import Assignment
from recstack.serving.engine.request import RecommendationRequest
from recstack.serving.runtime.experiments import ExperimentRuntime, runtime_of
from recstack.serving.runtime.service import recommendations
from recstack.serving.runtime.state import AppState

INTERLEAVED = "interleaved"


def recommend_for(
    state: AppState, user_id: str, req: RecommendationRequest, request_id: str
) -> dict[str, Any]:
    """The recommendations body for ``user_id``, with ``recommendation_id`` and ``experiment``."""
    runtime = runtime_of(state)
    assignment = runtime.assign(user_id) if req.slot is None else None
    if assignment is None:
        body = recommendations(state, user_id, req, request_id)
        return runtime.record(body, surface="recommendations", user_id=user_id, assignment=None)
    experiment = assignment.experiment
    if experiment.mode == "interleave":
        return _interleaved(runtime, state, user_id, req, request_id, assignment)
    slot = runtime.slot_of(experiment, assignment.arm)
    if experiment.exploration.kind != "none":
        return _explored(runtime, state, user_id, req, request_id, assignment, slot)
    body = recommendations(state, user_id, dataclasses.replace(req, slot=slot), request_id)
    return runtime.record(body, surface="recommendations", user_id=user_id, assignment=assignment)


def _interleaved(
    runtime: ExperimentRuntime,
    state: AppState,
    user_id: str,
    req: RecommendationRequest,
    request_id: str,
    assignment: Assignment,
) -> dict[str, Any]:
    from recstack.experiments.interleaving import team_draft

    experiment = assignment.experiment
    names = experiment.arm_names
    lists = [
        recommendations(
            state,
            user_id,
            dataclasses.replace(req, slot=runtime.slot_of(experiment, n)),
            request_id,
        )
        for n in names
    ]
    by_id: dict[str, dict[str, Any]] = {}
    for body in reversed(lists):  # the first arm's copy (its score) wins for shared items
        by_id.update({item["item_id"]: item for item in body["items"]})
    ranked = [[item["item_id"] for item in body["items"]] for body in lists]
    merged = team_draft(ranked[0], ranked[1], req.k, np.random.default_rng())
    body = {**lists[0], "items": [by_id[str(i)] for i in merged.items]}
    extras = [{"team": names[int(team)]} for team in merged.teams]
    return runtime.record(
        body,
        surface="recommendations",
        user_id=user_id,
        assignment=assignment,
        arm=INTERLEAVED,
        extras=extras,
    )


def _explored(
    runtime: ExperimentRuntime,
    state: AppState,
    user_id: str,
    req: RecommendationRequest,
    request_id: str,
    assignment: Assignment,
    slot: str,
) -> dict[str, Any]:
    from recstack.experiments.ope import epsilon_greedy, plackett_luce_sample

    policy = assignment.experiment.exploration
    wide = dataclasses.replace(req, slot=slot, k=max(policy.top_n, req.k))
    body = recommendations(state, user_id, wide, request_id)
    candidates = body["items"]
    k = min(req.k, len(candidates))
    rng = np.random.default_rng()
    if k == 0:
        chosen, props = np.zeros(0, dtype=np.int64), np.zeros(0)
    elif policy.kind == "epsilon":
        chosen, props = epsilon_greedy(np.arange(len(candidates)), k, policy.epsilon, rng)
    else:
        scores = np.array([float(item["score"]) for item in candidates])
        chosen, props = plackett_luce_sample(scores, k, rng, policy.temperature)
    body = {**body, "items": [candidates[int(i)] for i in chosen]}
    extras = [{"propensity": float(p)} for p in props]
    return runtime.record(
        body, surface="recommendations", user_id=user_id, assignment=assignment, extras=extras
    )


def route(
    state: AppState, user_id: str | None, slot: str | None
) -> tuple[Assignment | None, str | None]:
    """``(assignment, slot)`` for similar items and search: the arm's slot when ``user_id`` is
    in an A/B experiment (interleaving and exploration shape recommendation lists only)."""
    runtime = runtime_of(state)
    assignment = runtime.assign(user_id) if slot is None else None
    if assignment is None or assignment.experiment.mode != "ab":
        return None, slot
    return assignment, runtime.slot_of(assignment.experiment, assignment.arm)


def record(
    state: AppState,
    body: dict[str, Any],
    surface: str,
    user_id: str | None,
    assignment: Assignment | None,
) -> dict[str, Any]:
    """Give ``body`` its ``recommendation_id`` and ``experiment`` and log its exposure."""
    return runtime_of(state).record(body, surface=surface, user_id=user_id, assignment=assignment)
