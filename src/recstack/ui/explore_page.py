"""The Explore page: a user's history beside their recommendations from every loaded slot
(with the history items that explain each pick), an item with its similar items, a search box.

Recommendations come straight from the running engine (``engine.recommend`` per slot, the
call the recommendation route makes), so what the page shows is what the API would serve.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from recstack.errors import RecstackError
from recstack.store.activity import find_items
from recstack.ui.web import Viewer, app_state, dashboard, page_viewer

router = APIRouter(prefix="/ui")
K = 10


def user_view(state: Any, user_id: str) -> dict[str, Any]:
    """History and per-slot recommendations of ``user_id`` (an unknown user is cold start)."""
    record = state.store.get_user(user_id)
    history = state.store.user_history(user_id, limit=20) if record is not None else None
    rows = [] if history is None else history.to_dict("records")
    engine = state.engine
    columns = []
    for slot, info in engine.slots.items():
        try:
            found = engine.recommend(user_id, K, explain=True, slot=slot)
        except RecstackError as exc:
            columns.append({"slot": slot, "model": info.as_dict(), "error": str(exc)})
            continue
        columns.append(
            {
                "slot": slot,
                "model": info.as_dict(),
                "primary": slot == engine.primary,
                "source": found.source,
                "cold_start": found.cold_start,
                "items": found.items,
            }
        )
    return {"user_id": user_id, "known": record is not None, "history": rows, "slots": columns}


def item_view(state: Any, item_id: str) -> dict[str, Any] | None:
    """An item's stored record and its similar items from each slot, or None if unknown."""
    record = state.store.get_item(item_id)
    if record is None:
        return None
    engine = state.engine
    similar = []
    for slot in engine.slots:
        try:
            items, source = engine.similar(item_id, K, slot=slot)
        except RecstackError as exc:
            similar.append({"slot": slot, "error": str(exc), "items": []})
            continue
        similar.append({"slot": slot, "source": source, "items": items})
    return {"record": record, "similar": similar}


def search_view(state: Any, text: str) -> dict[str, Any]:
    """Semantic search when a content model is loaded, else id/title matches in the store."""
    try:
        items, _personal = state.engine.search(text, K)
        return {
            "semantic": True,
            "items": [{"item_id": i.item_id, "title": i.title} for i in items],
        }
    except RecstackError as exc:
        return {"semantic": False, "note": str(exc), "items": find_items(state.store.engine, text)}


@router.get("/explore", response_class=HTMLResponse, include_in_schema=False)
def explore(
    request: Request,
    user: str | None = Query(None, max_length=255),
    item: str | None = Query(None, max_length=255),
    q: str | None = Query(None, max_length=200),
    viewer: Viewer = Depends(page_viewer),
) -> HTMLResponse:
    state = app_state(request)
    user = (user or "").strip() or None
    item = (item or "").strip() or None
    q = (q or "").strip() or None
    error = None
    if (user or item or q) and not state.loaded:
        error = state.startup_error or "the engine is still loading"
    ready = state.loaded and state.store is not None
    return dashboard(request).render(
        request,
        "explore.html",
        viewer=viewer,
        page="explore",
        user=user,
        item=item,
        q=q,
        error=error,
        user_view=user_view(state, user) if user and ready else None,
        item_view=item_view(state, item) if item and ready else None,
        item_missing=bool(item and ready and state.store.get_item(item) is None),
        search=search_view(state, q) if q and ready else None,
    )
