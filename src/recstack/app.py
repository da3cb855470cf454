"""The whole HTTP app: the serving API, plus the dashboard where it is installed.

``serving`` never imports ``ui`` (the dashboard sits above it and reads the app's state); this
module composes them, and the serving supervisor starts every worker from :func:`app_from_env`
here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from recstack import ui
from recstack.serving.api import app as serving_app
from recstack.settings import Settings, get_settings


def create_app(settings: Settings | None = None, **kwargs: Any) -> FastAPI:
    """The serving app (``recstack.serving.api.app.create_app``) with every extension mounted."""
    settings = settings or get_settings()
    app = serving_app.create_app(settings, **kwargs)
    ui.mount(app, settings)
    return app


def app_from_env() -> FastAPI:
    """The app uvicorn builds in each worker (``factory=True``); see the serving app's docstring."""
    serving_app.configure_worker()
    return create_app(get_settings())
