"""What every dashboard route shares: templates, the signed-in person, CSRF checks, forms.

The app state the dashboard reads (``app.state.recstack``: settings, store, engine slots,
metrics, jobs) is the one the serving API built; the dashboard reaches it by attribute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from recstack.ui.live import LiveFigures
from recstack.ui.session import SESSION_COOKIE, SessionSealer, load_secret

HERE = Path(__file__).parent
NAV = (
    ("overview", "Overview", "/ui/"),
    ("models", "Models", "/ui/models"),
    ("experiments", "Experiments", "/ui/experiments"),
    ("monitoring", "Monitoring", "/ui/monitoring"),
    ("data", "Data", "/ui/data"),
    ("explore", "Explore", "/ui/explore"),
    ("keys", "Keys", "/ui/keys"),
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 64 * 1024


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, data endpoints answer 401."""


class Refused(Exception):
    """A signed-in person may not do this (403) or the request is malformed (400/404/409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: their principal (id, scope, name) and their CSRF token."""

    principal: Any
    sid: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return bool(self.principal.allows("admin"))


class Dashboard:
    """The dashboard's own state on one app: template environment, sealer, live figures."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.sealer = SessionSealer(load_secret(settings))
        self.live = LiveFigures()
        self._cache: dict[str, tuple[float, Any]] = {}
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["num"] = _num
        self.env.filters["ms"] = lambda v: "—" if v is None else f"{v:.1f} ms"
        self.env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f} %"
        self.env.filters["when"] = _when
        self.env.filters["rate"] = lambda v: "—" if v is None else f"{v:,.1f}"
        self.env.globals["nav"] = NAV

    def cached(self, key: str, seconds: float, compute: Any) -> Any:
        """``compute()``, reused for ``seconds`` (figures many viewers load at once)."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()
        self._cache[key] = (now + seconds, value)
        return value

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        viewer: Viewer | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request, viewer=viewer, csrf=viewer.csrf if viewer else None, **context
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def dashboard(request: Request) -> Dashboard:
    return request.app.state.recstack_ui


def app_state(request: Request) -> Any:
    return request.app.state.recstack


def viewer_of(request: Request) -> Viewer | None:
    """The person whose valid session cookie came with ``request``, if any."""
    ui = dashboard(request)
    session = ui.sealer.open(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    state = app_state(request)
    if not state.settings.auth_enabled:
        from types import SimpleNamespace

        principal: Any = SimpleNamespace(
            id="open", scope="admin", name="auth disabled", allows=lambda scope: True
        )
    else:
        principal = state.principal(session.credential)
        if principal is None:
            return None
    return Viewer(principal, session.sid, ui.sealer.csrf_token(session.sid))


async def page_viewer(request: Request) -> Viewer:
    """Dependency of every page and data endpoint: the signed-in person (read scope at least)."""
    viewer = viewer_of(request)
    if viewer is None or not viewer.principal.allows("read"):
        raise LoginRequired()
    return viewer


async def form_of(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST (the dashboard's forms post nothing else)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        raise Refused(400, "expected a URL-encoded form")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "malformed form") from None
    return dict(pairs)


async def action(request: Request, scope: str = "admin") -> tuple[Viewer, dict[str, str]]:
    """A POST's signed-in person and form, after the CSRF and scope checks (401/403)."""
    viewer = viewer_of(request)
    if viewer is None:
        raise Refused(401, "not signed in: log in again")
    form = await form_of(request)
    presented = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not dashboard(request).sealer.csrf_ok(viewer.sid, presented):
        raise Refused(403, "missing or invalid CSRF token: reload the page and try again")
    if not viewer.principal.allows(scope):
        raise Refused(403, f"this needs the {scope} scope; you are signed in with read access")
    return viewer, form


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _when(value: Any) -> str:
    """A time (epoch seconds, datetime or ISO text) as ``YYYY-MM-DD HH:MM:SS UTC``.

    >>> _when(0), _when("2026-11-30T21:56:18.091526+00:00"), _when(None), _when("soon")
    ('1970-01-01 00:00:00 UTC', '2026-11-30 21:56:18 UTC', '—', 'soon')
    """
    if value in (None, ""):
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.timestamp()
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    return str(value)
