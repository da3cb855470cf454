"""Experiments from the dashboard: the same definitions, lifecycle and results as the API."""

from __future__ import annotations

FORM = {
    "key": "ui-test",
    "description": "made from the form",
    "traffic": "0.5",
    "primary_metric": "ctr",
    "mode": "ab",
    "arm0_name": "control",
    "arm0_model": "popularity",
    "arm0_weight": "0.5",
    "arm1_name": "treatment",
    "arm1_model": "popularity",
    "arm1_weight": "0.5",
}


def test_create_start_stop_from_the_form(dash):
    token = dash.login("admin")
    empty = dash.client.get("/ui/experiments")
    assert "No experiment yet" in empty.text
    created = dash.client.post(
        "/ui/experiments", data={**FORM, "csrf_token": token}, follow_redirects=False
    )
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/ui/experiments/ui-test"
    admin = {"Authorization": f"Bearer {dash.keys['admin']}"}
    api = dash.client.get("/v1/experiments/ui-test", headers=admin).json()
    assert api["status"] == "draft" and api["traffic"] == 0.5
    assert [a["name"] for a in api["arms"]] == ["control", "treatment"]
    page = dash.client.get("/ui/experiments/ui-test")
    assert page.status_code == 200 and "Start experiment" in page.text
    started = dash.client.post(
        "/ui/experiments/ui-test/start", data={"csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303, started.text
    assert dash.client.get("/v1/experiments/ui-test", headers=admin).json()["status"] == "running"
    again = dash.client.post("/ui/experiments/ui-test/start", data={"csrf_token": token})
    assert again.status_code == 409
    results = dash.client.get("/ui/experiments/ui-test/results")
    assert results.status_code == 200 and "Decision" in results.text
    stopped = dash.client.post(
        "/ui/experiments/ui-test/stop", data={"csrf_token": token}, follow_redirects=False
    )
    assert stopped.status_code == 303
    assert dash.client.get("/v1/experiments/ui-test", headers=admin).json()["status"] == "stopped"


def test_bad_definitions_and_read_sessions_are_refused(dash):
    token = dash.login("admin")
    bad = dash.client.post(
        "/ui/experiments", data={**FORM, "arm1_weight": "0.4", "csrf_token": token}
    )
    assert bad.status_code == 400 and "weight" in bad.text
    reader = dash.login("read")
    refused = dash.client.post("/ui/experiments", data={**FORM, "csrf_token": reader})
    assert refused.status_code == 403
    admin = {"Authorization": f"Bearer {dash.keys['admin']}"}
    assert dash.client.get("/v1/experiments", headers=admin).json() == []
