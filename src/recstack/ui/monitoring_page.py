"""The Monitoring page: drift reports and the timeline of retraining decisions.

Both are read from the store where ``workflows.monitor`` and ``workflows.retrain`` record them
(``store.monitoring``); the page says how to produce the first one while there is none.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from recstack.ui.web import Refused, Viewer, app_state, dashboard, page_viewer

router = APIRouter(prefix="/ui")
REPORT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# A stored report page is self-contained HTML: shown with scripts and every fetch blocked.
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def drift_reports(state: Any, limit: int = 20) -> list[dict[str, Any]]:
    from recstack.store.monitoring import list_drift_reports

    return list_drift_reports(state.store.engine, limit)


def decisions(state: Any, limit: int = 50) -> list[dict[str, Any]]:
    from recstack.store.monitoring import list_decisions

    return list_decisions(state.store.engine, limit)


def drift_status(state: Any) -> dict[str, Any] | None:
    """The newest drift report's verdict for the overview, or None when there is none."""
    if state.store is None:
        return None
    found = drift_reports(state, 1)
    return found[0] if found else None


@router.get("/monitoring", response_class=HTMLResponse, include_in_schema=False)
def monitoring_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    state = app_state(request)
    if state.store is None:
        raise Refused(503, "no store connected")
    return dashboard(request).render(
        request,
        "monitoring.html",
        viewer=viewer,
        page="monitoring",
        reports=drift_reports(state),
        decisions=decisions(state),
    )


@router.get("/monitoring/reports/{report_id}", include_in_schema=False)
def report_page(
    request: Request, report_id: str, viewer: Viewer = Depends(page_viewer)
) -> HTMLResponse:
    """One drift report's own HTML page (scripts blocked)."""
    from recstack.store.monitoring import get_drift_report

    if not REPORT_ID.match(report_id):
        raise Refused(404, "no such drift report")
    found = get_drift_report(app_state(request).store.engine, report_id)
    if found is None:
        raise Refused(404, "no such drift report")
    return HTMLResponse(found[1], headers=REPORT_HEADERS)
