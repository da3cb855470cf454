"""The operations behind the routes: cached recommendations and the live write paths.

Write paths always go to the store first (committed before the response) and then to the
in-memory engine, then move the user's cache generation so no stale response is served:

- events: stored (idempotent by ``event_id``), added to the users' live histories at once;
- item upserts: stored, then added to the catalogue (and content model) at once; a batch
  is one transaction and one catalogue change;
- user purge: deleted from the store, forgotten by the engine, cached responses deleted.

With Redis, purges, item upserts and reloads are also broadcast to the other workers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from recstack import tracing
from recstack.data.event_ids import new_event_id
from recstack.data.validation import event_columns
from recstack.errors import InvalidRequestError, NotFoundError, TooLargeError, UnavailableError
from recstack.serving.engine.core import Engine
from recstack.serving.engine.filters import canonical_filter
from recstack.serving.engine.request import (
    MAX_BATCH_EVENTS,
    MAX_BATCH_ITEMS,
    RecommendationRequest,
)
from recstack.serving.runtime.cache import variant_key
from recstack.serving.runtime.image import delete_images
from recstack.serving.runtime.state import AppState, LiveEngine

log = logging.getLogger("recstack.serving")

BROADCAST_ID_BYTES = 800  # of JSON ids per "items" message: a shared-ring slot holds 1 KiB


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
    variant = _variant(state, info, req)
    generation, cached = _lookup(state, user_id, variant)
    if cached is not None:
        state.metrics.cache_hits.inc()
        return {**cached, "request_id": request_id}
    state.metrics.cache_misses.inc()
    sync_user(state, live, user_id, generation)
    with tracing.span("recstack.retrieval"):
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


def prefetch_recommendations(
    state: AppState, requests: Sequence[tuple[str, RecommendationRequest]]
) -> int:
    """Score together the model lists of requests about to be served (same slot, ``k`` and
    filter; see ``engine.batch``), skipping users whose response is cached. Returns how many
    lists were scored."""
    live = state.live
    engine = live.engine
    user_ids = []
    for user_id, req in requests:
        variant = _variant(state, engine.slot_info(req.slot), req)
        generation, cached = _lookup(state, user_id, variant)
        if cached is None:
            sync_user(state, live, user_id, generation)  # score the history the request reads
            user_ids.append(user_id)
    if len(user_ids) < 2:
        return 0
    first = requests[0][1]
    return engine.prefetch(user_ids, first.k, first.filter, first.slot)


def _variant(state: AppState, info: Any, req: RecommendationRequest) -> str | None:
    """The response cache's key of a request's options (None with the cache off)."""
    if state.cache.ttl <= 0:
        return None
    return variant_key(
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
def post_events(state: AppState, events: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Store events (durable before returning) and apply them to the live engine.

    ``events`` are tuples in ``INTERACTION_COLUMNS`` order; a missing ``event_id`` gets a new
    one and a missing ``timestamp`` the time of the request. They are checked once by
    ``recstack.data.validation`` (the rules of every write path) and stay plain lists all the
    way: a single event costs a short transaction and a few dictionary lookups, no pandas.
    """
    if len(events) > MAX_BATCH_EVENTS:
        raise TooLargeError(
            f"a batch may hold at most {MAX_BATCH_EVENTS} events; got {len(events)}"
        )
    if state.store is None:
        raise UnavailableError("no store connected: events cannot be stored")
    live = state.live
    columns = event_columns(_completed(events), "request")
    missing = ensure_items(state, live.engine, list(dict.fromkeys(columns[2])))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidRequestError(
            f"unknown item id(s) {shown}{more}: create items with PUT /v1/items/{{item_id}} first"
        )
    inserted = state.store.add_event_columns(columns)
    duplicates = len(events) - inserted
    state.metrics.events.labels("inserted").inc(inserted)
    state.metrics.events.labels("duplicate").inc(duplicates)
    if inserted:
        unique = len(set(columns[0])) == len(events)
        _apply_events(state, live, columns, all_new=unique and inserted == len(events))
    return {"accepted": len(events), "inserted": inserted, "duplicates": duplicates}


def _completed(events: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """Events with an id and a time where they have none."""
    now = int(time.time())
    out: list[Sequence[Any]] = []
    for event in events:
        if event[0] is None or event[5] is None:
            event = (event[0] or new_event_id(), *event[1:5], now if event[5] is None else event[5],
                     *event[6:])  # fmt: skip
        out.append(event)
    return out


def _apply_events(
    state: AppState, live: LiveEngine, columns: list[list[Any]], all_new: bool
) -> None:
    """Add newly stored events to the engine and move their users' cache generations; when
    some were stored before (a retried batch), re-read those users from the store instead."""
    engine = live.engine
    _, users_col, items_col, types_col, values_col, stamps_col, _ = columns
    if all_new:
        since = engine.history_since
        if since is None:
            engine.apply_events(users_col, items_col, types_col, values_col)
        else:
            keep = [i for i, t in enumerate(stamps_col) if t >= since]
            engine.apply_events(
                [users_col[i] for i in keep],
                [items_col[i] for i in keep],
                [types_col[i] for i in keep],
                [values_col[i] for i in keep],
            )
    users = list(dict.fromkeys(users_col))
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


def upsert_items(state: AppState, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store a batch of items in one transaction (all or none; ``DataError`` naming the first
    bad one), then serve them at once through one catalogue change; returns the stored
    records in request order.

    Each entry is ``{"item_id", ...fields}`` with the fields of ``upsert_item``. Other workers
    are told in messages of at most ``BROADCAST_ID_BYTES`` of ids, so a whole catalogue fits
    the workers' shared ring as well as Redis.
    """
    if len(items) > MAX_BATCH_ITEMS:
        raise TooLargeError(f"a batch may hold at most {MAX_BATCH_ITEMS} items; got {len(items)}")
    if state.store is None:
        raise UnavailableError("no store connected: items cannot be stored")
    records = state.store.upsert_items(list(items))
    _apply_items(state, records)
    if state.broadcast is not None:
        for chunk in _id_chunks(list(dict.fromkeys(r["item_id"] for r in records))):
            state.broadcast.publish("items", items=chunk)
    return records


def _id_chunks(item_ids: list[str]) -> Iterable[list[str]]:
    chunk: list[str] = []
    size = 0
    for item_id in item_ids:
        cost = len(json.dumps(item_id)) + 2
        if chunk and size + cost > BROADCAST_ID_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(item_id)
        size += cost
    if chunk:
        yield chunk


def _apply_items(state: AppState, records: list[dict[str, Any]]) -> None:
    state.apply_change(lambda engine: engine.upsert_items(records))


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
        delete_images(state.settings.home)  # they hold the user's history
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
    elif kind == "items" and state.store is not None:
        found = [state.store.get_item(str(item_id)) for item_id in message["items"]]
        records = [record for record in found if record is not None]
        if records:
            _apply_items(state, records)
    elif kind == "reload":
        _in_background(state.reload)
    elif kind == "slot":
        _in_background(state.load_slot, str(message["slot"]), message.get("ref"))
    elif kind == "unslot":
        _in_background(state.unload_slot, str(message["slot"]))
    elif kind == "experiments":
        from recstack.serving.runtime.experiments import runtime_of

        _in_background(runtime_of(state).refresh)


def _in_background(work: Any, *args: Any) -> None:
    """Run another worker's reload or slot change off the listener thread."""

    def run() -> None:
        try:
            work(*args)
        except Exception:  # noqa: BLE001 - logged; what was loaded keeps serving
            log.exception("a change requested by another worker failed: %s%s", work, args)

    threading.Thread(target=run, daemon=True).start()
