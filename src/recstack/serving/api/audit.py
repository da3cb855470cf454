"""The audit hook: every admin action (a non-GET call under ``/v1/admin``) by an authenticated
caller becomes an entry of the store's audit log — key prefix, action, target, status, time.

Called once per request by the request middleware, so no admin route has to remember it.
Reads (GET) are not actions and are not logged. A failure to write the entry is logged and
does not change the response the caller already got.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

log = logging.getLogger("recstack.serving")

ADMIN_PREFIX = "/v1/admin"


def is_admin_action(scope: Scope) -> bool:
    """Whether the request is an admin action to audit."""
    return scope["method"] != "GET" and scope.get("path", "").startswith(ADMIN_PREFIX)


async def audit_admin_action(scope: Scope, status: int, request_id: str) -> None:
    """Write the audit entry of one admin request (when its caller was authenticated)."""
    principal = scope.get("state", {}).get("principal")
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "recstack", None)
    store = getattr(state, "store", None)
    if principal is None or store is None:
        return
    route = scope.get("route")
    template = getattr(route, "path", None) or scope.get("path", "")
    entry: dict[str, Any] = {
        "key_prefix": str(principal.id),
        "action": f"{scope['method']} {template}",
        "target": scope.get("path"),
        "status": status,
        "request_id": request_id,
    }
    try:
        await run_in_threadpool(store.operations.record_audit, **entry)
    except Exception:  # noqa: BLE001 - the action happened; say the entry is missing
        log.exception("could not write the audit entry of %s", entry)
