"""Plain ASGI middleware around every request: request id, body size cap, metrics, and
the optional parts: a JSON access log line (``log_format = "json"``), a tracing span (see
``recstack.tracing``) and the audit entry of admin actions (``serving.api.audit``).

Written as raw ASGI (not ``BaseHTTPMiddleware``) to keep the per-request cost to a few
microseconds. The size cap rejects a declared ``Content-Length`` above the limit before the
body is read, and stops a streamed (chunked) body as soon as it passes the limit; both give
413 with the standard error body.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recstack import tracing
from recstack.data.event_ids import time_ordered_id
from recstack.serving.api.audit import audit_admin_action, is_admin_action
from recstack.serving.api.errors import error_body
from recstack.serving.runtime.logs import log_request
from recstack.serving.runtime.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    """Gives each request an id, caps its body at ``max_bytes`` and records its metrics."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, max_bytes: int, *, log_json: bool = False
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.log_json = log_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.enabled():
            context = tracing.extract_context(scope.get("headers", []))
            with tracing.request_span(scope["method"], context) as span:
                await self._handle(scope, receive, send)
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.request.method", scope["method"])
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_bytes:
                await _too_large(send_with_id, request_id, self.max_bytes)
                return
            await self.app(scope, _capped(receive, self.max_bytes), send_with_id)
            if is_admin_action(scope):
                await audit_admin_action(scope, status, request_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - start
            self.metrics.observe(scope["method"], template, status, seconds)
            if self.log_json:
                version, arm = _served_by(scope)
                log_request(request_id, scope["method"], template, status, seconds, version, arm)


def note_served_by(request: Any, body: dict[str, Any]) -> None:
    """Remember which model version and experiment arm served ``body`` (for the access log)."""
    model = body.get("model") or {}
    tag = body.get("experiment") or {}
    request.state.model_version = model.get("version")
    request.state.arm = tag.get("arm")


def _served_by(scope: Scope) -> tuple[object, object]:
    """The model version and experiment arm a request was served by: what the route put in
    ``request.state`` (``model_version``, ``arm``), else the primary model's version."""
    request_state = scope.get("state", {})
    version = request_state.get("model_version")
    if version is None:
        state = getattr(getattr(scope.get("app"), "state", None), "recstack", None)
        if state is not None and state.loaded:
            version = state.engine.model_info.version
    return version, request_state.get("arm")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            given = value.decode("latin-1")
            if _SAFE_ID.match(given):
                return given
            break
    return time_ordered_id()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _capped(receive: Receive, max_bytes: int) -> Receive:
    seen = 0

    async def receive_capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise HTTPException(413, f"request body exceeds the limit of {max_bytes} bytes")
        return message

    return receive_capped


async def _too_large(send: Any, request_id: str, max_bytes: int) -> None:
    body = json.dumps(
        error_body(
            "payload_too_large", f"request body exceeds the limit of {max_bytes} bytes", request_id
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
