"""API fuzzing with schemathesis against the app's own OpenAPI schema, every stock check on:
no server errors, every response conforms to what the schema documents (status codes, headers,
content types, bodies), schema-violating requests are rejected and schema-valid ones accepted.

A schema-valid request may still be refused for a reason the schema cannot express; never
because it is vaguer than the server. Those answers are documented on their routes and allowed
here per operation, each with the reason its message must give (``DOCUMENTED_REFUSALS``): an
event naming an item the catalogue lacks, a filter naming an attribute no item has (or a
numeric range on one without numbers), and a body's `k` spelled `5.0` (JSON Schema counts it
an integer; the body parser is strict on purpose). /v1/search answers 503 without a content
model. Training and
reloading are left out (each case would train or rebuild an engine for seconds);
test_admin_reload covers them.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from recstack.serving.api.app import create_app
from recstack.serving.engine.core import Engine, ModelInfo
from recstack.settings import Settings
from recstack.store import Store

ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' default
FILTER_REASONS = r"unknown filter attribute|has no numeric values to compare"
DOCUMENTED_REFUSALS: dict[str, dict[int, str]] = {
    "POST /v1/events": {422: r"unknown item id|unknown recommendation_id"},
    "POST /v1/experiments": {
        422: r"weights must sum|names must be unique|interleave mode|"
        r"forced user|end must be after|unknown model"
    },
    "GET /v1/users/{user_id}/recommendations": {422: FILTER_REASONS},
    "POST /v1/users/{user_id}/recommendations": {
        422: rf"{FILTER_REASONS}|k: Input should be a valid integer"
    },
    "GET /v1/popular": {422: FILTER_REASONS},
}
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            *(
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [*ACCEPTED, *map(str, refused)]
                        }
                    },
                }
                for name, refused in DOCUMENTED_REFUSALS.items()
            ),
            {
                "include-name": "GET /v1/search",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}
                },
            },
        ]
    }
)


def refused_for_the_documented_reason(ctx, response, case) -> None:
    """A schema-valid request refused with a status allowed above names the data's reason."""
    reasons = DOCUMENTED_REFUSALS.get(case.operation.label, {})
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code in reasons:
        message = response.json()["error"]["message"]
        assert re.search(reasons[response.status_code], message), (
            f"{case.operation.label} refused valid data for an undocumented reason: {message}"
        )


# The app object exists at import (the schema is read from it at collection); its store and
# engine are installed by the fixture below, so nothing heavy happens at import time.
APP = create_app(Settings(rate_limit_per_minute=1_000_000, max_request_bytes=1_000_000))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module")
def admin_headers(tmp_path_factory, planted, als_model, fill):
    state = APP.state.recstack
    state.settings = state.settings.with_overrides(home=tmp_path_factory.mktemp("fuzz") / "home")
    state.settings.ensure_home()
    store = Store.from_settings(state.settings)
    fill(store, planted)
    engine = Engine.from_dataset(
        store.snapshot(state.settings.weighting()),
        als_model,
        model_info=ModelInfo("als", 1, "recstack"),
    )
    state.store = store
    state.install(engine, [], 0)
    yield {"Authorization": f"Bearer {store.create_api_key('admin', 'fuzz')[0]}"}
    state.close()
    store.close()


@schema.exclude(path_regex="^/v1/admin/(train|reload)$").parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_survives_fuzzing(case, admin_headers):
    case.call_and_validate(
        headers=admin_headers, additional_checks=[refused_for_the_documented_reason]
    )
