"""The dashboard in a real browser: Playwright driving Debian's Chromium against a real server.

One browser for the module; each page must load with no console error and no failed request.
Screenshots of every page go to ``$RECSTACK_SCREENSHOTS`` (default: a temporary directory).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

# one worker runs both tests (`make test` runs -n 2 --dist loadfile): one server, one browser
pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PAGES = [
    ("overview", "/ui/"),
    ("models", "/ui/models"),
    ("experiments", "/ui/experiments"),
    ("monitoring", "/ui/monitoring"),
    ("data", "/ui/data"),
    ("explore", "/ui/explore?user=u3&item=i7&q=i1"),
    ("keys", "/ui/keys"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("RECSTACK_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watched:
    """A page whose console errors and failed requests are collected."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on(
            "console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}")
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )

    def _failed(self, request) -> None:
        # a fetch still in flight when the page navigates away is cancelled, not failed
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} {request.failure}")

    def clean(self) -> None:
        problems, self.problems = self.problems, []
        assert problems == []


def log_in(watched: Watched, server, key: str) -> None:
    page = watched.page
    page.goto(f"{server.url}/ui/login")
    page.get_by_label("API key or token").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/ui/")


def admin_models(server) -> dict:
    response = httpx.get(
        f"{server.url}/v1/admin/models", headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    assert response.status_code == 200
    return response.json()


def experiment(server, key: str) -> dict:
    response = httpx.get(
        f"{server.url}/v1/experiments/{key}",
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def traffic(server) -> None:
    """Some API requests, so the overview's live figures have something to show."""
    headers = {"Authorization": f"Bearer {server.read_key}"}
    for user in range(60):
        httpx.get(f"{server.url}/v1/users/u{user}/recommendations", headers=headers)
    httpx.get(f"{server.url}/v1/items/nope/similar", headers=headers)


def test_every_page_promote_and_logout(browser, server, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    page = watched.page
    log_in(watched, server, server.admin_key)
    traffic(server)
    for name, path in PAGES:
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").first.is_visible(), name
        assert server.admin_key not in page.content()
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        watched.clean()
    # the live figures refresh by themselves
    page.goto(server.url + "/ui/")
    with page.expect_response(re.compile(r"/ui/overview/live$")):
        pass
    page.wait_for_selector("#overview-chart .uplot")
    watched.clean()

    # promote the newest version to champion from the UI, then the API shows it
    before = admin_models(server)
    newest = max(v["version"] for v in before["versions"] if v["name"] == "recstack")
    assert not any("champion" in v["aliases"] for v in before["versions"] if v["version"] == newest)
    assert before["loaded"]["version"] != newest
    page.goto(server.url + "/ui/models")
    page.get_by_role("link", name=f"Promote recstack version {newest} to champion").click()
    page.get_by_role("button", name="Yes, promote").click()
    page.get_by_role("status").wait_for()
    assert f"now points at version {newest}" in page.get_by_role("status").inner_text()
    page.screenshot(path=str(shots / "promoted.png"), full_page=True)
    watched.clean()
    after = admin_models(server)
    champions = {v["version"] for v in after["versions"] if "champion" in v["aliases"]}
    assert champions == {newest}
    assert after["loaded"]["version"] == newest
    previous = before["loaded"]["version"]
    page.goto(server.url + "/ui/models")
    page.get_by_role("link", name="Roll back champion").click()
    page.get_by_role("button", name="Yes, rollback").click()
    assert f"now points at version {previous}" in page.get_by_role("status").inner_text()
    assert admin_models(server)["loaded"]["version"] == previous
    page.goto(server.url + "/ui/models")
    page.get_by_role("link", name=f"Promote recstack version {newest} to champion").click()
    page.get_by_role("button", name="Yes, promote").click()
    page.get_by_role("status").wait_for()
    assert admin_models(server)["loaded"]["version"] == newest
    watched.clean()

    # create, start and stop an experiment from the UI; the API sees each step
    page.goto(server.url + "/ui/experiments")
    page.get_by_label("Key").fill("browser-ab")
    page.get_by_label("Arm 1 model").fill("champion")
    page.get_by_label("Arm 2 model").fill("popularity")
    page.get_by_role("button", name="Create experiment").click()
    page.wait_for_url(f"{server.url}/ui/experiments/browser-ab")
    assert experiment(server, "browser-ab")["status"] == "draft"
    page.get_by_role("button", name="Start experiment").click()
    page.wait_for_url(f"{server.url}/ui/experiments/browser-ab")
    assert experiment(server, "browser-ab")["status"] == "running"
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    for user in range(40):  # traffic through the arms, and clicks on some first items
        served = httpx.get(f"{server.url}/v1/users/u{user}/recommendations", headers=admin).json()
        if user % 3 == 0 and served["items"]:
            click = {"user_id": f"u{user}", "item_id": served["items"][0]["item_id"]}
            posted = httpx.post(
                f"{server.url}/v1/events", json={**click, "event_type": "click"}, headers=admin
            )
            assert posted.status_code in (200, 201, 202), posted.text
    page.reload()
    page.screenshot(path=str(shots / "experiment.png"), full_page=True)
    page.get_by_role("button", name="Stop experiment").click()
    page.wait_for_url(f"{server.url}/ui/experiments/browser-ab")
    assert experiment(server, "browser-ab")["status"] == "stopped"
    watched.clean()

    # log out: the pages are refused again
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{server.url}/ui/login")
    page.goto(server.url + "/ui/models")
    assert page.url == f"{server.url}/ui/login"
    response = page.request.get(server.url + "/ui/api/overview")
    assert response.status == 401
    context.close()


def test_phone_width_and_read_only(browser, server, shots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    watched = Watched(context.new_page())
    page = watched.page
    log_in(watched, server, server.read_key)
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the overview scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(shots / "overview-phone.png"), full_page=True)
    for name, path in PAGES[:-1]:  # every page a read key may open fits a phone's width
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} scrolls sideways at phone width ({width}px)"
    assert page.get_by_role("link", name="Keys").count() == 0
    page.goto(server.url + "/ui/models")
    assert page.get_by_role("button", name="Start training").count() == 0
    watched.clean()
    # keyboard: the skip link is the first stop and moves focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    context.close()
