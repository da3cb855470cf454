"""The demo runs end to end on tiny data and prints a curl line for a known user."""

from __future__ import annotations

from recstack.demo import run_demo
from recstack.registry import ModelRegistry
from recstack.settings import Settings


def test_demo_end_to_end_without_serving(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    out = run_demo(settings, users=300, items=120, events=8000, serve=False, port=8123)
    assert out["key"].startswith("rs_")
    assert "http://127.0.0.1:8123/v1/users/" in out["curl"] and out["key"] in out["curl"]
    assert out["dashboard"] == "http://127.0.0.1:8123/ui/"
    names = [m.name for m in out["evaluation"].models]
    assert names == ["popularity", "itemknn", "ease", "als"]
    registry = ModelRegistry(settings)
    champion = registry.resolve(settings.model_name, "champion")
    assert champion.version == out["version"].version
    best = max(out["evaluation"].models, key=lambda result: result.metrics["ndcg"])
    assert champion.model == best.name
    if out["search"] is not None:  # with the text extra: a content model for search beside it
        assert registry.resolve(settings.model_name + "-content", "champion").version == 1
