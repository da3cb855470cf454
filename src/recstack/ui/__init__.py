"""The dashboard served by the app at ``/ui``: server-rendered pages over the same library calls.

``mount(app, settings)`` adds the pages, their data endpoints and the vendored static files
(htmx, uPlot; no CDN, works offline) to an app the serving package built. The dashboard reads
that app's state (``app.state.recstack``) and acts through the library calls the admin API
makes (workflows, registry, store, and the serving runtime where experiment arms load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI, settings: Any) -> FastAPI:
    """Serve the dashboard from ``app`` at ``/ui`` (log in with an API key or a JWT)."""
    from recstack.ui import (
        experiments_page,
        explore_page,
        keys_page,
        models_page,
        monitoring_page,
        pages,
    )
    from recstack.ui.web import SECURITY_HEADERS, Dashboard, LoginRequired, Refused, viewer_of

    app.state.recstack_ui = Dashboard(settings)
    for module in (pages, models_page, experiments_page, monitoring_page, explore_page, keys_page):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if request.headers.get("hx-request") or not wants_html:
            headers = {"HX-Redirect": "/ui/login", **SECURITY_HEADERS}
            return Response("not signed in", status_code=401, headers=headers)
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> HTMLResponse:
        ui = request.app.state.recstack_ui
        return ui.render(
            request,
            "refused.html",
            status=exc.status,
            viewer=viewer_of(request),
            page=None,
            message=exc.message,
        )

    return app
