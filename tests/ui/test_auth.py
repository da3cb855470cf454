"""Who may see and do what on the dashboard: sessions, cookie flags, CSRF, scopes, keys."""

from __future__ import annotations

import re
import time

import pytest

PAGES = ["/ui/", "/ui/models", "/ui/experiments", "/ui/monitoring", "/ui/data", "/ui/explore"]
DATA = ["/ui/api/overview", "/ui/api/event-types", "/ui/overview/live", "/ui/models/jobs"]


def login_token(client) -> str:
    page = client.get("/ui/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_pages_and_data_refuse_a_missing_session(dash):
    for path in PAGES + ["/ui/keys"]:
        response = dash.client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/ui/login"
    for path in DATA:
        assert dash.client.get(path, follow_redirects=False).status_code == 401, path


def test_login_sets_a_strict_httponly_cookie_and_never_echoes_the_key(dash):
    token = login_token(dash.client)
    response = dash.client.post(
        "/ui/login",
        data={"key": dash.keys["read"], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("recstack_session=")
    )
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    assert dash.keys["read"] not in cookie  # sealed, not the key in clear
    for path in PAGES + DATA:
        page = dash.client.get(path)
        assert page.status_code == 200, path
        for key in dash.keys.values():
            assert key not in page.text, path
        assert page.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("case", ["bad_key", "no_form_token", "wrong_form_token"])
def test_bad_logins_are_refused(dash, case):
    token = login_token(dash.client)
    data = {"key": dash.keys["admin"], "csrf_token": token}
    if case == "bad_key":
        data["key"] = "rk_0000000000_nottherealsecret"
    elif case == "no_form_token":
        del data["csrf_token"]
    else:
        data["csrf_token"] = "x" + token
    response = dash.client.post("/ui/login", data=data, follow_redirects=False)
    assert response.status_code == (401 if case == "bad_key" else 403)
    assert "recstack_session=" not in response.headers.get("set-cookie", "")
    assert dash.keys["admin"] not in response.text
    assert dash.client.get("/ui/api/overview").status_code == 401


def test_a_forged_cookie_is_no_session(dash):
    dash.client.cookies.set("recstack_session", "A" * 120, path="/ui")
    assert dash.client.get("/ui/api/overview").status_code == 401


def test_posts_without_a_valid_csrf_token_are_refused(dash):
    dash.login("admin")
    before = len(dash.store.list_api_keys())
    for data, headers in [
        ({"name": "x", "scope": "admin"}, {}),
        ({"name": "x", "scope": "admin", "csrf_token": "0" * 64}, {}),
        ({"name": "x", "scope": "admin"}, {"X-CSRF-Token": "nope"}),
    ]:
        response = dash.client.post("/ui/keys", data=data, headers=headers)
        assert response.status_code == 403, response.text
        assert "CSRF" in response.text
    assert len(dash.store.list_api_keys()) == before


def test_a_read_session_sees_but_cannot_act(dash):
    token = dash.login("read")
    assert dash.client.get("/ui/keys").status_code == 403
    page = dash.client.get("/ui/models")
    assert "Start training" not in page.text and "Promote" not in page.text
    before = len(dash.store.list_api_keys())
    actions = [
        ("/ui/keys", {"name": "x", "scope": "admin"}),
        ("/ui/keys/revoke", {"prefix": dash.store.list_api_keys()[0]["prefix"]}),
        ("/ui/models/train", {"model": "popularity", "params": "{}"}),
        ("/ui/models/promote", {"name": "recstack", "version": "1", "alias": "champion"}),
        ("/ui/models/rollback", {"name": "recstack", "alias": "champion"}),
    ]
    for path, data in actions:
        response = dash.client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, (path, response.text)
        assert "admin scope" in response.text
    assert len(dash.store.list_api_keys()) == before
    assert all(k["revoked_at"] is None for k in dash.store.list_api_keys())
    assert dash.app.state.recstack.jobs.list() == []
    confirm = dash.client.get("/ui/models/confirm?op=promote&name=recstack&version=1")
    assert confirm.status_code == 403


def test_a_new_key_is_shown_once_and_works(dash):
    token = dash.login("admin")
    response = dash.client.post(
        "/ui/keys", data={"name": "made in ui", "scope": "read", "csrf_token": token}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    key = re.search(r'id="new-key" readonly value="([^"]+)"', response.text).group(1)
    ok = dash.client.get("/v1/users/u1/recommendations", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    listing = dash.client.get("/ui/keys")
    assert "made in ui" in listing.text and key not in listing.text
    prefix = key.split("_")[1]
    revoked = dash.client.post(
        "/ui/keys/revoke", data={"prefix": prefix, "csrf_token": token}, follow_redirects=False
    )
    assert revoked.status_code == 303
    gone = dash.client.get(
        "/v1/users/u1/recommendations", headers={"Authorization": f"Bearer {key}"}
    )
    assert gone.status_code == 401


def test_logout_ends_the_session(dash):
    token = dash.login("admin")
    response = dash.client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert dash.client.get("/ui/api/overview").status_code == 401


def test_revoking_the_key_ends_its_sessions(dash):
    dash.login("read")
    prefix = dash.keys["read"].split("_")[1]
    assert dash.store.revoke_api_key(prefix)
    dash.app.state.recstack.verifier.clear()
    assert dash.client.get("/ui/api/overview").status_code == 401


def test_train_from_the_ui_queues_a_job(dash):
    token = dash.login("admin")
    bad = dash.client.post(
        "/ui/models/train", data={"model": "als", "params": '{"factors": -1}', "csrf_token": token}
    )
    assert bad.status_code == 400 and "factors" in bad.text
    response = dash.client.post(
        "/ui/models/train",
        data={"model": "popularity", "params": "{}", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    jobs = dash.app.state.recstack.jobs.list()
    assert [j.kind for j in jobs] == ["train"]
    assert jobs[0].request["model"] == "popularity"
    deadline = time.monotonic() + 120
    while dash.app.state.recstack.jobs.get(jobs[0].id).status in ("queued", "running"):
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.2)
    job = dash.app.state.recstack.jobs.get(jobs[0].id)
    assert job.status == "succeeded", job.error
    page = dash.client.get("/ui/models")
    assert re.search(r'<tr data-version="1">\s*<td>recstack</td>', page.text)
    assert "succeeded" in dash.client.get("/ui/models/jobs").text


def test_promotion_needs_a_registered_version(dash):
    token = dash.login("admin")
    confirm = dash.client.get("/ui/models/confirm?op=promote&name=recstack&version=3")
    assert confirm.status_code == 200 and "version <strong>3</strong>" in confirm.text
    assert 'name="csrf_token"' in confirm.text
    response = dash.client.post(
        "/ui/models/promote",
        data={"name": "recstack", "version": "3", "alias": "champion", "csrf_token": token},
    )
    assert response.status_code == 404 and "no model is registered" in response.text
    assert not (dash.settings.home / "mlflow.db").exists()
    bad = dash.client.post(
        "/ui/models/promote",
        data={"name": "recstack", "version": "3", "alias": "bad alias", "csrf_token": token},
    )
    assert bad.status_code == 400
