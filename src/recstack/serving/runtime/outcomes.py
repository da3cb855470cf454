"""Events as outcomes of served lists: each one credited to the exposure it followed.

An event naming a ``recommendation_id`` is credited to that list (an id never served is
refused before anything is stored). Without one, while experiments run, it is credited to
the user's latest list served in an experiment that showed the item within
``attribution_window_seconds`` (outcomes of other lists feed no analysis). In
interleaving the credit goes to the arm that contributed the item. Outcomes are stored after
the events themselves (idempotent by ``event_id``), so a retried batch credits nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from recstack.data.event_ids import new_event_id
from recstack.errors import InvalidRequestError
from recstack.serving.runtime.experiments import runtime_of
from recstack.serving.runtime.service import post_events
from recstack.serving.runtime.state import AppState

Event = Sequence[Any]


def post_attributed_events(
    state: AppState, events: Sequence[Event], refs: Sequence[str | None]
) -> dict[str, int]:
    """``post_events`` plus the outcomes the events are; no refs and no running experiment
    cost nothing extra."""
    runtime = runtime_of(state)
    if not any(refs) and not runtime.running:
        return post_events(state, events)
    if state.store is None:
        return post_events(state, events)
    now = int(time.time())
    completed = [
        (e[0] or new_event_id(), *e[1:5], now if e[5] is None else e[5], *e[6:]) for e in events
    ]
    rows = outcome_rows(state, completed, refs, now)
    result = post_events(state, completed)
    state.store.exposures.add_outcomes(rows)
    return result


def outcome_rows(
    state: AppState, events: Sequence[Event], refs: Sequence[str | None], now: float
) -> list[dict[str, Any]]:
    """The outcome rows of ``events`` (InvalidRequestError naming unknown recommendation ids
    or a list served to another user)."""
    assert state.store is not None
    exposures = state.store.exposures
    writer = runtime_of(state).writer
    wanted = {ref for ref in refs if ref}
    users = {event[1] for event in events}
    # a list this worker served a moment ago may still be queued (record: id, time, user, ...)
    if writer is not None and writer.holds(lambda q: q[0] in wanted or q[2] in users):
        writer.flush(timeout=5.0)
    found = exposures.find(wanted) if wanted else {}
    unknown = sorted(wanted - set(found))
    if unknown:
        shown = ", ".join(repr(r) for r in unknown[:5])
        raise InvalidRequestError(f"unknown recommendation_id {shown}: no list was served with it")
    rows: list[dict[str, Any]] = []
    unreferenced = [(e[1], e[2]) for e, ref in zip(events, refs, strict=True) if not ref]
    since = now - state.settings.attribution_window_seconds
    latest = exposures.latest_showing(unreferenced, since) if unreferenced else {}
    for index, event in enumerate(events):
        ref = refs[index]
        if ref:
            exposure = found[ref]
            if exposure["user_id"] is not None and exposure["user_id"] != event[1]:
                raise InvalidRequestError(
                    f"recommendation_id {ref!r} was served to another user, not {event[1]!r}"
                )
        else:
            exposure = latest.get((event[1], event[2]))
            if exposure is None:
                continue
        rows.append(_row(event, exposure))
    return rows


def _row(event: Event, exposure: dict[str, Any]) -> dict[str, Any]:
    shown = next((i for i in exposure["items"] if i["item_id"] == event[2]), None)
    arm = exposure["arm"]
    if shown is not None and "team" in shown:
        arm = shown["team"]  # interleaving: the arm that contributed the item
    return {
        "event_id": event[0],
        "recommendation_id": exposure["recommendation_id"],
        "experiment": exposure["experiment"],
        "arm": arm,
        "user_id": event[1],
        "item_id": event[2],
        "event_type": event[3] or "view",
        "value": event[4],
        "position": shown["position"] if shown is not None else None,
        "timestamp": int(event[5]),
    }
