"""What the pages show, over the planted store (200 users, 120 items, 3,000 views)."""

from __future__ import annotations

import re


def test_data_page_counts_and_recent_events(dash):
    dash.login("read")
    page = dash.client.get("/ui/data").text
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))
    assert figures == {
        "Events stored": "3,000",
        "Users": "200",
        "Items": "120",
        "Active items": "120",
    }
    assert page.count('href="/ui/explore?user=') == 20
    types = dash.client.get("/ui/api/event-types").json()
    assert list(types["types"]) == ["view"] and sum(types["types"]["view"]) == 3000


def test_explore_shows_history_recommendations_and_similar_items(dash):
    dash.login("read")
    page = dash.client.get("/ui/explore", params={"user": "u3", "item": "i7"}).text
    expected = dash.app.state.recstack.engine.recommend("u3", 10, explain=True)
    first = expected.items[0]
    assert f'href="/ui/explore?item={first.item_id}"' in page
    assert "because of:" in page
    similar, _ = dash.app.state.recstack.engine.similar("i7", 10)
    assert f"?item={similar[0].item_id}" in page
    unknown = dash.client.get("/ui/explore", params={"user": "nobody"}).text
    assert "cold start" in unknown
    missing = dash.client.get("/ui/explore", params={"item": "nope"}).text
    assert "No item nope in the store" in missing
    found = dash.client.get("/ui/explore", params={"q": "i11"}).text
    assert 'href="/ui/explore?item=i11"' in found


def test_empty_states_say_how_to_start(dash):
    dash.login("read")
    monitoring = dash.client.get("/ui/monitoring").text
    assert "No drift report yet" in monitoring and "No retraining decision yet" in monitoring
    models = dash.client.get("/ui/models").text
    assert "No registered model yet" in models and "recstack train" in models
    assert "No evaluation report yet" in models


def test_live_figures_count_api_traffic_but_not_the_dashboard(dash):
    from recstack.ui.live import read_metrics

    dash.login("read")
    metrics = dash.app.state.recstack.metrics
    before = read_metrics(metrics.render().decode())
    headers = {"Authorization": f"Bearer {dash.keys['read']}"}
    for _ in range(5):
        assert dash.client.get("/v1/users/u1/recommendations", headers=headers).status_code == 200
    assert dash.client.get("/v1/items/nope/similar", headers=headers).status_code == 404
    for _ in range(3):
        overview = dash.client.get("/ui/api/overview").json()["current"]
    after = read_metrics(metrics.render().decode())
    assert after.requests - before.requests == 6
    assert after.client_errors - before.client_errors == 1
    assert after.buckets[-1] - (before.buckets or [0])[-1] == 6
    assert overview["store"]["events"] == 3000
