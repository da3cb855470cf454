"""Log in and out, the Overview with its live figures, and the Data page.

The overview's refresh (``/ui/overview/live``, ``/ui/api/overview``) reads only the metrics the
server already keeps and the store's cheap counters (``store.activity``): no table scan, so it
stays fast on a store of tens of millions of events.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from recstack.store.activity import (
    activity_counts,
    event_types_over_time,
    live_counts,
    recent_events,
)
from recstack.ui.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    login_token_ok,
    new_login_token,
)
from recstack.ui.web import (
    SECURITY_HEADERS,
    Refused,
    Viewer,
    action,
    app_state,
    dashboard,
    form_of,
    page_viewer,
)

router = APIRouter(prefix="/ui")
RECENT_EVENTS = 20_000


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request) -> HTMLResponse:
    return login_page(request)


def login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The login form with a fresh double-submit token (and why the last try failed)."""
    token = new_login_token()
    response = dashboard(request).render(
        request, "login.html", status=status, login_token=token, error=error, page="login"
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/ui",
        max_age=3600,
    )
    return response


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Any:
    """Check the presented key (or JWT) with the app's verifier; on success seal it in the
    session cookie. The key is never written back into any page."""
    form = await form_of(request)
    if not login_token_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf_token")):
        return login_page(request, "The form expired: please try again.", status=403)
    credential = (form.get("key") or "").strip()
    state = app_state(request)
    principal = None
    if credential and len(credential) <= 8192:
        if not state.settings.auth_enabled:
            principal = True
        else:
            principal = await run_in_threadpool(state.principal, credential)
    if principal is None:
        return login_page(request, "That key or token is not valid.", status=401)
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        dashboard(request).sealer.seal(credential),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/ui",
        max_age=int(dashboard(request).sealer.lifetime),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> RedirectResponse:
    await action(request, scope="read")
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def overview(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    from recstack.ui.models_page import versions
    from recstack.ui.monitoring_page import drift_status

    state = app_state(request)
    slots = state.slots() if state.loaded else []
    try:
        found = versions(state.settings)
    except Exception as exc:  # noqa: BLE001 - the overview shows what it can
        found, registry_error = [], f"{type(exc).__name__}: {exc}"
    else:
        registry_error = None
    last = max(found, key=lambda v: str(v.created_at or ""), default=None)
    return dashboard(request).render(
        request,
        "overview.html",
        viewer=viewer,
        page="overview",
        slots=slots,
        last_trained=last,
        registry_error=registry_error,
        startup_error=state.startup_error,
        drift=_quietly(drift_status, state),
        live=live_figures(request),
    )


def _quietly(read: Any, *args: Any) -> Any:
    """``read(*args)``, or None when that part of the system cannot answer."""
    try:
        return read(*args)
    except Exception:  # noqa: BLE001 - the overview shows what it can
        return None


def live_figures(request: Request) -> dict[str, Any]:
    """Request, latency, error, event and cache figures of the last seconds, all workers."""
    state = app_state(request)
    figures = dashboard(request).live.update(state.metrics.render().decode())
    counts = live_counts(state.store.engine) if state.store is not None else {}
    return {**figures, "store": counts}


@router.get("/overview/live", response_class=HTMLResponse, include_in_schema=False)
def overview_live(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    """The live figures block alone: htmx swaps it in every few seconds."""
    return dashboard(request).render(
        request, "_live.html", viewer=viewer, live=live_figures(request)
    )


@router.get("/api/overview", include_in_schema=False)
def overview_json(request: Request, viewer: Viewer = Depends(page_viewer)) -> JSONResponse:
    """The live figures and this worker's recent history of them (the overview's chart)."""
    current = live_figures(request)
    history = dashboard(request).live.history()
    series = {
        key: [h.get(key) for h in history]
        for key in ("at", "requests_per_second", "p50_ms", "p95_ms", "p99_ms")
    }
    return JSONResponse({"current": current, "series": series}, headers=SECURITY_HEADERS)


@router.get("/data", response_class=HTMLResponse, include_in_schema=False)
def data_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    state = app_state(request)
    if state.store is None:
        raise Refused(503, "no store connected")
    engine = state.store.engine
    return dashboard(request).render(
        request,
        "data.html",
        viewer=viewer,
        page="data",
        counts=activity_counts(engine),
        recent=recent_events(engine, 20),
        database=state.store.database,
    )


@router.get("/api/event-types", include_in_schema=False)
def event_types(request: Request, viewer: Viewer = Depends(page_viewer)) -> JSONResponse:
    """Counts per event type over time for the last 20,000 events (the Data page's chart),
    computed at most every 10 s per worker."""
    state = app_state(request)

    def compute() -> dict[str, Any]:
        return event_types_over_time(state.store.engine, last=RECENT_EVENTS, buckets=24)

    found = dashboard(request).cached("event-types", 10.0, compute)
    return JSONResponse(found, headers=SECURITY_HEADERS)
