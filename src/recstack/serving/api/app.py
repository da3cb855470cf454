"""The FastAPI application: ``create_app(settings)`` builds one, nothing exists at import time.

``create_app(settings, engine=None, store=None)`` wires state, middleware, error handlers and
routes. At startup (the lifespan) it connects the store and loads the engine unless they were
given; tests pass ready-made ones. ``app_from_env`` is the factory uvicorn calls in each worker
(``recstack serve``), so every worker builds its own app from the environment's settings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

import recstack
from recstack import tracing
from recstack.serving.api.auth import document_security, security_schemes_openapi
from recstack.serving.api.errors import install_error_handlers
from recstack.serving.api.middleware import RequestContextMiddleware
from recstack.serving.api.routers import (
    admin,
    events,
    experiments,
    health,
    items,
    monitoring,
    operations,
    rank,
    recommend,
    search,
    similar,
    users,
)
from recstack.serving.runtime import service
from recstack.serving.runtime.experiments import runtime_of
from recstack.serving.runtime.logs import configure_logging
from recstack.serving.runtime.state import AppState
from recstack.settings import Settings, get_settings

log = logging.getLogger("recstack.serving")

DESCRIPTION = """\
Personalised recommendations, similar items, semantic search and live feedback.

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` (create keys with
`recstack keys create --scope read|write|admin`). Errors always have the body
`{"error": {"code", "message", "request_id"}}`.
"""


def create_app(
    settings: Settings | None = None,
    engine: Any | None = None,
    store: Any | None = None,
    *,
    key_prefix: str = "recstack:",
) -> FastAPI:
    """A new app serving ``engine`` (or the registry's model, loaded at startup).

    Args:
        settings: auth, limits, cache, Redis, CORS; ``get_settings()`` when None.
        engine: a ready ``Engine``; when None it is built from the store and registry.
        store: a ready ``Store``; when None one is opened from ``settings`` at startup.
        key_prefix: prefix of every Redis key (cache, rate limits, broadcast channel).
    """
    settings = settings or get_settings()
    state = AppState(
        settings,
        store=store,
        engine=engine,
        key_prefix=key_prefix,
        on_message=service.apply_broadcast,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.start)
        exp_runtime = runtime_of(state)
        await run_in_threadpool(exp_runtime.start)
        try:
            yield
        finally:
            exp_runtime.close()  # queued exposures reach the store before it closes
            state.close()
            state.metrics.worker_exited(os.getpid())

    app = FastAPI(
        title="recstack",
        version=recstack.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.recstack = state
    install_error_handlers(app)
    routers = [
        m.router
        for m in (
            recommend,
            rank,
            similar,
            search,
            events,
            items,
            users,
            admin,
            experiments,
            monitoring,
            operations,
            health,
        )
    ]
    for router in [*routers, health.metrics_router(settings.metrics_public)]:
        document_security(router)
        app.include_router(router)
    security_schemes_openapi(app)
    # ahead of FastAPI's copies of the same paths (kept for the OpenAPI schema)
    app.router.routes[:0] = [*recommend.plain_routes(), *events.plain_routes()]
    app.add_middleware(
        RequestContextMiddleware,
        metrics=state.metrics,
        max_bytes=settings.max_request_bytes,
        log_json=settings.log_format == "json",
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    return app


def app_from_env() -> FastAPI:
    """The app uvicorn builds in each worker (``factory=True``): settings from the environment.

    The worker's BLAS/OpenMP pools are limited to ``OMP_NUM_THREADS`` (``recstack serve`` sets
    1): scoring one user is a small matrix-vector product, and multi-threaded BLAS in several
    workers on the same cores makes it several times slower, not faster.
    """
    configure_worker()
    return create_app(get_settings())


def configure_worker() -> None:
    """Logging and BLAS/OpenMP thread limits of one serving worker process."""
    from threadpoolctl import threadpool_limits

    configure_logging(get_settings(), os.environ.get("RECSTACK_LOG_LEVEL", "INFO"))
    tracing.configure()  # only when the OTEL_* environment asks for it
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        threadpool_limits(limits=int(threads))
