"""The operations behind the routes: cached recommendations and the live write paths.

Write paths always go to the store first (committed before the response) and then to the
in-memory engine, then move the user's cache generation so no stale response is served:

- events: stored (idempotent by ``event_id``), added to the users' live histories at once;
- item upserts: stored, then added to the catalogue (and content model) at once;
- user purge: deleted from the store, forgotten by the engine, cached responses deleted.

With Redis, purges, item upserts and reloads are also broadcast to the other workers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from recstack.errors import InvalidRequestError, NotFoundError, TooLargeError, UnavailableError
from recstack.serving.engine.core import Engine
from recstack.serving.engine.filters import canonical_filter
from recstack.serving.engine.request import MAX_BATCH_EVENTS, RecommendationRequest
from recstack.serving.runtime.cache import variant_key
from recstack.serving.runtime.state import AppState, LiveEngine
from recstack.store.event_rows import EventRow, add_event_rows

log = logging.getLogger("recstack.serving")


# ---- reads ------------------------------------------------------------------------------------
def recommendations(
    state: AppState, user_id: str, req: RecommendationRequest, request_id: str
) -> dict[str, Any]:
    """The recommendation response for a user, from the cache when it is fresh.

    With caching off (``cache_ttl_seconds = 0``) no cache key is computed; the lookup still
    reads the user's generation, which keeps the engine in step with other workers.
    """
    live = state.live
    engine = live.engine
    info = engine.slot_info(req.slot)
    variant = None
    if state.cache.ttl > 0:
        variant = variant_key(
            info.name,
            info.version,
            info.registered_name,
            req.k,
            req.exclude_seen,
            sorted(req.exclude),
            canonical_filter(req.filter),
            req.explain,
            req.slot,
        )
    generation, cached = _lookup(state, user_id, variant)
    if cached is not None:
        state.metrics.cache_hits.inc()
        return {**cached, "request_id": request_id}
    state.metrics.cache_misses.inc()
    sync_user(state, live, user_id, generation)
    result = engine.recommend(
        user_id,
        req.k,
        exclude_seen=req.exclude_seen,
        exclude=req.exclude,
        filter=req.filter,
        explain=req.explain,
        slot=req.slot,
    )
    body = {
        "user_id": user_id,
        "items": [_item_body(item) for item in result.items],
        "model": info.as_dict(),
        "cold_start": result.cold_start,
    }
    if variant is not None:
        try:
            state.cache.store(user_id, generation, variant, body)
        except Exception:  # noqa: BLE001 - a cache outage must not fail the request
            log.exception("cache store failed")
    return {**body, "request_id": request_id}


def _item_body(item: Any) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "score": item.score,
        "title": item.title,
        "explanation": item.explanation,
    }


def _lookup(
    state: AppState, user_id: str, variant: str | None
) -> tuple[int, dict[str, Any] | None]:
    try:
        return state.cache.lookup(user_id, variant)
    except Exception:  # noqa: BLE001 - without the cache, compute (and treat as unchanged)
        log.exception("cache lookup failed")
        return 0, None


def fresh_user(state: AppState, user_id: str) -> None:
    """Make sure the engine's copy of a user is current (call before reading their history)."""
    generation, _ = _lookup(state, user_id, None)
    sync_user(state, state.live, user_id, generation)


def sync_user(state: AppState, live: LiveEngine, user_id: str, generation: int) -> None:
    """Re-read a user's history from the store if another worker changed it."""
    if live.in_sync(user_id, generation) or state.store is None:
        return
    try:
        events = state.store.user_history(user_id)
    except Exception:  # noqa: BLE001 - serve what memory holds; retried on the next request
        log.warning("could not re-read user history from the store", exc_info=True)
        return
    if len(events) == 0:
        live.engine.forget_user(user_id)
        live.synced.pop(user_id, None)
        return
    ensure_items(state, live.engine, events["item_id"].unique().tolist())
    live.engine.set_history(user_id, events)
    live.synced[user_id] = generation


def ensure_items(state: AppState, engine: Engine, item_ids: Iterable[str]) -> list[str]:
    """Load items the engine lacks from the store (added by another worker); returns the
    ids the store does not have either."""
    missing = []
    for item_id in item_ids:
        if engine.has_item(item_id):
            continue
        record = state.store.get_item(item_id) if state.store is not None else None
        if record is None:
            missing.append(item_id)
        else:
            _apply_item(state, record)
    return missing


# ---- events -----------------------------------------------------------------------------------
def post_events(state: AppState, events: Sequence[Any]) -> dict[str, int]:
    """Store events (durable before returning) and apply them to the live engine.

    Plain tuples all the way (``store.event_rows``): a single posted event costs a short
    transaction and a few dictionary lookups, no pandas.
    """
    if len(events) > MAX_BATCH_EVENTS:
        raise TooLargeError(
            f"a batch may hold at most {MAX_BATCH_EVENTS} events; got {len(events)}"
        )
    if state.store is None:
        raise UnavailableError("no store connected: events cannot be stored")
    live = state.live
    rows = _event_rows(events)
    missing = ensure_items(state, live.engine, list(dict.fromkeys(r.item_id for r in rows)))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidRequestError(
            f"unknown item id(s) {shown}{more}: create items with PUT /v1/items/{{item_id}} first"
        )
    inserted = add_event_rows(state.store.engine, rows)
    duplicates = len(events) - inserted
    state.metrics.events.labels("inserted").inc(inserted)
    state.metrics.events.labels("duplicate").inc(duplicates)
    if inserted:
        _apply_events(state, live, rows, all_new=inserted == len(rows))
    return {"accepted": len(events), "inserted": inserted, "duplicates": duplicates}


def _event_rows(events: Sequence[Any]) -> list[EventRow]:
    """The request's events as store rows; an event_id repeated within the request is kept once."""
    now = int(time.time())
    seen: set[str] = set()
    rows = []
    for event in events:
        event_id = event.event_id or uuid.uuid4().hex
        if event_id in seen:
            continue
        seen.add(event_id)
        rows.append(
            EventRow(
                event_id,
                event.user_id,
                event.item_id,
                event.event_type,
                None if event.value is None else float(event.value),
                now if event.timestamp is None else _epoch(event.timestamp),
                event.context,
            )
        )
    return rows


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _apply_events(state: AppState, live: LiveEngine, rows: list[EventRow], all_new: bool) -> None:
    engine = live.engine
    if all_new:
        since = engine.history_since
        kept = rows if since is None else [r for r in rows if r.timestamp >= since]
        engine.apply_events(
            [r.user_id for r in kept],
            [r.item_id for r in kept],
            [r.event_type for r in kept],
            [r.value for r in kept],
        )
    users = list(dict.fromkeys(r.user_id for r in rows))
    try:
        generations = state.cache.invalidate_many(users)
    except Exception:  # noqa: BLE001 - keep the engine right even if the cache is down
        log.exception("cache invalidation failed")
        generations = [(0, 0)] * len(users)
    for user, (previous, new) in zip(users, generations, strict=True):
        if all_new and live.in_sync(user, previous):
            live.synced[user] = new
        elif all_new:  # another worker changed them too: re-read on their next request
            live.synced.pop(user, None)
        else:  # some events were stored before: what the engine holds is unsure, re-read now
            live.synced.pop(user, None)
            sync_user(state, live, user, new)


# ---- items and users --------------------------------------------------------------------------
def upsert_item(state: AppState, item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Store an item (``title``, ``text``, ``attributes`` left out of ``fields`` keep their
    stored value), then serve it at once."""
    if state.store is None:
        raise UnavailableError("no store connected: items cannot be stored")
    record = state.store.upsert_item(
        item_id,
        title=fields.get("title"),
        text=fields.get("text"),
        attributes=fields.get("attributes"),
        active=fields.get("active", True),
    )
    _apply_item(state, record)
    if state.broadcast is not None:
        state.broadcast.publish("item", item=item_id)
    return record


def _apply_item(state: AppState, record: dict[str, Any]) -> None:
    def change(engine: Engine) -> None:
        engine.upsert_item(
            record["item_id"],
            title=record.get("title"),
            text=record.get("text"),
            attributes=dict(record.get("attributes") or {}),
            active=bool(record.get("active", True)),
        )

    state.apply_change(change)


def purge_user(state: AppState, user_id: str) -> int:
    """Erase a user from store, engine and cache; returns the events deleted.

    Raises NotFoundError when neither the store nor the engine knows the user.
    """
    deleted, stored = 0, False
    if state.store is not None:
        try:
            deleted, stored = state.store.delete_user(user_id), True
        except NotFoundError:
            pass
    engine = state.engine
    known = engine.histories.knows(user_id) or engine.known_to_model(user_id)
    _forget(state, user_id)
    try:
        state.cache.purge(user_id)
    except Exception as exc:  # noqa: BLE001 - say exactly what is left to do
        log.exception("cache purge failed")
        raise UnavailableError(
            "the user was erased from the store and from memory, but cached responses could "
            "not be deleted (cache unreachable); repeat the DELETE when it is back",
        ) from exc
    if state.broadcast is not None:
        state.broadcast.publish("purge", user=user_id)
    if not stored and not known:
        raise NotFoundError(f"unknown user {user_id!r}")
    return deleted


def _forget(state: AppState, user_id: str) -> None:
    state.apply_change(lambda engine: engine.forget_user(user_id))
    state.live.synced.pop(user_id, None)


def apply_broadcast(state: AppState, message: dict[str, Any]) -> None:
    """Apply another worker's change to this worker's engine."""
    kind = message.get("kind")
    if not state.loaded:
        return
    if kind == "purge":
        _forget(state, str(message["user"]))
    elif kind == "item" and state.store is not None:
        record = state.store.get_item(str(message["item"]))
        if record is not None:
            _apply_item(state, record)
    elif kind == "reload":
        _in_background(state.reload)
    elif kind == "slot":
        _in_background(state.load_slot, str(message["slot"]), message.get("ref"))
    elif kind == "unslot":
        _in_background(state.unload_slot, str(message["slot"]))


def _in_background(work: Any, *args: Any) -> None:
    """Run another worker's reload or slot change off the listener thread."""

    def run() -> None:
        try:
            work(*args)
        except Exception:  # noqa: BLE001 - logged; what was loaded keeps serving
            log.exception("a change requested by another worker failed: %s%s", work, args)

    threading.Thread(target=run, daemon=True).start()
