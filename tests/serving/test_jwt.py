"""JWT bearer tokens (RS256 / ES256) against a JWKS file, beside API keys.

Keys are generated in the test (cryptography) and tokens signed with PyJWT, as an identity
provider would sign them.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from recstack.errors import ConfigError
from recstack.serving.runtime.tokens import JwtVerifier

AUDIENCE = "recstack-api"
ISSUER = "https://id.example.test/"


def _jwk(private, kid: str, alg: str) -> dict:
    public = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    data = json.loads(public.to_jwk(private.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def signers():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"rsa": rsa_key, "ec": ec_key, "stranger": stranger}


@pytest.fixture
def jwks_path(tmp_path, signers):
    path = tmp_path / "jwks.json"
    keys = [_jwk(signers["rsa"], "r1", "RS256"), _jwk(signers["ec"], "e1", "ES256")]
    path.write_text(json.dumps({"keys": keys}))
    return path


def token(signers, key="rsa", kid="r1", alg="RS256", **claims) -> str:
    now = int(time.time())
    body = {"sub": "alice", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, signers[key], algorithm=alg, headers={"kid": kid})


def settings_for(jwks_path) -> dict:
    return {
        "jwt_jwks_path": jwks_path,
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
        "jwt_scope_claim": "roles",
        "jwt_scope_map": {"recsys-reader": "read", "recsys-admin": "admin"},
    }


def test_valid_tokens_map_their_role_claim_to_a_scope(serve, als_model, signers, jwks_path):
    with serve(als_model, **settings_for(jwks_path)) as served:
        reader = token(signers, roles=["recsys-reader"])
        admin = token(signers, key="ec", kid="e1", alg="ES256", roles="openid recsys-admin")
        ok = served.client.get(
            "/v1/users/u1/recommendations", headers={"Authorization": f"Bearer {reader}"}
        )
        assert ok.status_code == 200, ok.text
        refused = served.client.get(
            "/v1/admin/models", headers={"Authorization": f"Bearer {reader}"}
        )
        assert refused.status_code == 403
        models = served.client.get("/v1/admin/models", headers={"Authorization": f"Bearer {admin}"})
        assert models.status_code == 200, models.text
        # API keys keep working beside tokens
        assert (
            served.client.get("/v1/admin/models", headers=served.headers("admin")).status_code
            == 200
        )


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrong_signature",
        "wrong_audience",
        "wrong_issuer",
        "unknown_kid",
        "no_role",
        "no_exp",
        "hs256_with_public_key",
        "alg_none",
        "garbage",
    ],
)
def test_bad_tokens_are_401(serve, als_model, signers, jwks_path, case):
    now = int(time.time())
    role = ["recsys-admin"]
    if case == "expired":
        bad = token(signers, roles=role, iat=now - 900, exp=now - 600)
    elif case == "wrong_signature":
        bad = token(signers, key="stranger", roles=role)
    elif case == "wrong_audience":
        bad = token(signers, roles=role, aud="someone-else")
    elif case == "wrong_issuer":
        bad = token(signers, roles=role, iss="https://evil.example.test/")
    elif case == "unknown_kid":
        bad = token(signers, kid="nope", roles=role)
    elif case == "no_role":
        bad = token(signers, roles=["viewer"])
    elif case == "no_exp":
        bad = token(signers, roles=role, exp=None)
    elif case == "hs256_with_public_key":
        public = json.dumps(_jwk(signers["rsa"], "r1", "RS256"))
        bad = jwt.encode(
            {"sub": "x", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "roles": role},
            public.encode() * 2,
            algorithm="HS256",
            headers={"kid": "r1"},
        )
    elif case == "alg_none":
        bad = jwt.encode(
            {"sub": "x", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "roles": role},
            None,
            algorithm="none",
            headers={"kid": "r1"},
        )
    else:
        bad = "aaa.bbb.ccc"
    with serve(als_model, **settings_for(jwks_path)) as served:
        response = served.client.get("/v1/admin/models", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, (case, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_jwks_tokens_are_unknown_keys(serve, als_model, signers):
    with serve(als_model) as served:
        good = token(signers, roles=["admin"])
        response = served.client.get(
            "/v1/admin/models", headers={"Authorization": f"Bearer {good}"}
        )
        assert response.status_code == 401


def test_a_rotated_jwks_file_is_reread(tmp_path, signers, jwks_path):
    verifier = JwtVerifier(
        jwks_path=jwks_path, audience=AUDIENCE, issuer=ISSUER, scope_claim="roles"
    )
    fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signers = {**signers, "fresh": fresh}
    new_token = token(signers, key="fresh", kid="r2", roles=["read"])
    assert verifier.principal(new_token) is None
    keys = json.loads(jwks_path.read_text())["keys"] + [_jwk(fresh, "r2", "RS256")]
    jwks_path.write_text(json.dumps({"keys": keys}))
    import os

    stat = jwks_path.stat()
    os.utime(jwks_path, (stat.st_atime, stat.st_mtime + 5))
    verifier._cache.clear()  # the rejection is remembered for a second
    found = verifier.principal(new_token)
    assert found is not None and found.scope == "read" and found.name == "alice"


def test_configuration_errors_are_clear(jwks_path):
    with pytest.raises(ConfigError, match="exactly one"):
        JwtVerifier()
    with pytest.raises(ConfigError, match="jwt_scope_map"):
        JwtVerifier(jwks_path=jwks_path, scope_map={"x": "root"})
