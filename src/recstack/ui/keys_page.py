"""The Keys page (admins): list, create and revoke API keys.

A new key's secret is shown once, on the page answering its creation (never cached, never
rendered again); the list shows only each key's public prefix, name and scope.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from recstack.errors import RecstackError
from recstack.ui.web import Refused, Viewer, action, app_state, dashboard, page_viewer

router = APIRouter(prefix="/ui")
SCOPES = ("read", "write", "admin")


@router.get("/keys", response_class=HTMLResponse, include_in_schema=False)
def keys_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    if not viewer.is_admin:
        return dashboard(request).render(
            request,
            "refused.html",
            status=403,
            viewer=viewer,
            page="keys",
            message="Managing API keys needs the admin scope.",
        )
    keys = app_state(request).store.list_api_keys()
    return dashboard(request).render(
        request, "keys.html", viewer=viewer, page="keys", keys=list(reversed(keys)), scopes=SCOPES
    )


@router.post("/keys", response_class=HTMLResponse, include_in_schema=False)
async def create_key(request: Request) -> HTMLResponse:
    viewer, form = await action(request)
    scope = form.get("scope", "")
    name = (form.get("name") or "").strip()[:255]
    if scope not in SCOPES:
        raise Refused(400, f"scope must be one of {', '.join(SCOPES)}")
    store = app_state(request).store
    try:
        key, record = await run_in_threadpool(store.create_api_key, scope, name)
    except RecstackError as exc:
        raise Refused(400, str(exc)) from None
    return dashboard(request).render(
        request, "key_created.html", viewer=viewer, page="keys", key=key, record=record
    )


@router.post("/keys/revoke", include_in_schema=False)
async def revoke_key(request: Request) -> RedirectResponse:
    _viewer, form = await action(request)
    prefix = form.get("prefix", "")
    if not prefix or len(prefix) > 16:
        raise Refused(400, "which key? (its prefix)")
    state = app_state(request)
    if not await run_in_threadpool(state.store.revoke_api_key, prefix):
        raise Refused(404, f"no active key with prefix {prefix!r}")
    state.verifier.clear()  # this worker stops accepting it now; others within seconds
    return RedirectResponse("/ui/keys", status_code=303)
