"""API fuzzing with schemathesis against the app's own OpenAPI schema: no 500s, every response
conforms to what the schema documents (status codes, headers, content types, bodies) and
schema-violating requests are rejected.

Two stock checks are replaced: ``not_a_server_error`` by ``no_internal_error`` (503 with the
error body is the documented answer of /v1/search without a content model), and
``positive_data_acceptance`` is off because the API validates beyond the schema on purpose (a
filter must be a JSON object naming known attributes, events must name existing items).
Training and reloading are left out (each case would train or rebuild an engine for seconds);
test_admin_reload covers them.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from recstack.serving.api.app import create_app
from recstack.serving.engine.core import Engine, ModelInfo
from recstack.settings import Settings
from recstack.store import Store


def no_internal_error(ctx, response, case) -> None:
    """Never a 500; a 5xx must be a deliberate 503 with the error body."""
    assert response.status_code < 500 or (
        response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    ), f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"


# The app object exists at import (the schema is read from it at collection); its store and
# engine are installed by the fixture below, so nothing heavy happens at import time.
APP = create_app(Settings(rate_limit_per_minute=1_000_000, max_request_bytes=1_000_000))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


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
        headers=admin_headers,
        excluded_checks=[not_a_server_error, positive_data_acceptance],
        additional_checks=[no_internal_error],
    )
