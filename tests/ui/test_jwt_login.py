"""Logging in to the dashboard with a JWT: its role claim decides what the session may do."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

AUDIENCE = "recstack-ui"


@pytest.fixture(scope="module")
def signer():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks(tmp_path, signer):
    key = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signer.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**key, "kid": "k1", "alg": "ES256"}]}))
    return path


def issue(signer, scope: str, lifetime: int = 300, audience: str = AUDIENCE) -> str:
    now = int(time.time())
    claims = {"sub": "carol", "aud": audience, "exp": now + lifetime, "scope": scope}
    return jwt.encode(claims, signer, algorithm="ES256", headers={"kid": "k1"})


def test_a_jwt_logs_in_with_its_mapped_scope(make_dash, jwks, signer):
    with make_dash(jwt_jwks_path=jwks, jwt_audience=AUDIENCE) as dash:
        dash.keys["jwt-read"] = issue(signer, "read")
        dash.keys["jwt-admin"] = issue(signer, "openid admin")
        token = dash.login("jwt-read")
        page = dash.client.get("/ui/")
        assert "carol (read)" in page.text and dash.keys["jwt-read"] not in page.text
        refused = dash.client.post(
            "/ui/keys", data={"name": "x", "scope": "read", "csrf_token": token}
        )
        assert refused.status_code == 403
        token = dash.login("jwt-admin")
        made = dash.client.post(
            "/ui/keys", data={"name": "x", "scope": "read", "csrf_token": token}
        )
        assert made.status_code == 200


@pytest.mark.parametrize("case", ["expired", "wrong_audience"])
def test_bad_tokens_cannot_log_in(make_dash, jwks, signer, case):
    with make_dash(jwt_jwks_path=jwks, jwt_audience=AUDIENCE) as dash:
        if case == "expired":
            dash.keys["bad"] = issue(signer, "admin", lifetime=-60)
        else:
            dash.keys["bad"] = issue(signer, "admin", audience="another-app")
        page = dash.client.get("/ui/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        response = dash.client.post(
            "/ui/login", data={"key": dash.keys["bad"], "csrf_token": token}
        )
        assert response.status_code == 401
        assert dash.client.get("/ui/api/overview").status_code == 401
