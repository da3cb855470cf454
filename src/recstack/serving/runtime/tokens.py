"""JWT bearer tokens (RS256 / ES256) verified against a JWKS, mapped to recstack's scopes.

An identity provider signs tokens; recstack only needs its public keys (a JWKS file or URL),
the audience and issuer it expects, and which claim carries the caller's roles. The claim
(a space-separated string or a list) is mapped through ``jwt_scope_map`` and the highest
scope any value maps to wins; a token mapping to no scope is refused like a bad signature.

Expired, not-yet-valid, wrongly signed, wrong-audience or wrong-issuer tokens, and tokens
signed with any other algorithm (``none``, HS256 with the public key as secret), are refused.
Verified tokens are remembered by their hash until they expire (at most ``TOKEN_CACHE_SECONDS``)
so a client reusing its token costs one dict lookup per request, as an API key does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from recstack.errors import ConfigError
from recstack.serving.runtime.keys import SCOPE_RANK, Principal

log = logging.getLogger("recstack.serving")

ALGORITHMS = ("RS256", "ES256")
TOKEN_CACHE_SECONDS = 60.0
REJECTED_CACHE_SECONDS = 1.0
JWKS_REFRESH_SECONDS = 30.0


def looks_like_jwt(credential: str) -> bool:
    """Whether a presented credential has a JWT's shape (three dot-separated parts).

    API keys (``rk_<prefix>_<secret>``) never contain a dot, so this one check routes a
    credential to the right verifier.

    >>> looks_like_jwt("eyJh.eyJz.c2ln"), looks_like_jwt("rk_0a1b2c3d4e_secret")
    (True, False)
    """
    return credential.count(".") == 2


def mapped_scope(claim: Any, mapping: dict[str, str]) -> str | None:
    """The highest recstack scope any value of a token's role claim maps to, or None.

    >>> mapped_scope("openid recstack.read recstack.admin",
    ...              {"recstack.read": "read", "recstack.admin": "admin"})
    'admin'
    >>> mapped_scope(["viewer"], {"viewer": "read"}), mapped_scope("other", {"viewer": "read"})
    ('read', None)
    """
    if isinstance(claim, str):
        values = claim.split()
    elif isinstance(claim, list | tuple):
        values = [str(v) for v in claim]
    else:
        return None
    scopes = [mapping[v] for v in values if v in mapping and mapping[v] in SCOPE_RANK]
    return max(scopes, key=SCOPE_RANK.__getitem__) if scopes else None


class JwtVerifier:
    """Verifies bearer tokens against the keys of a JWKS file or URL.

    Args:
        jwks_path / jwks_url: where the public keys are (one of them); the file is re-read
            when it changes, the URL refetched (at most every ``JWKS_REFRESH_SECONDS``) when a
            token names a key id it does not know.
        audience / issuer: required values of ``aud`` / ``iss`` (not checked when None).
        scope_claim: the claim holding the caller's roles (``scope``, ``roles``, ...).
        scope_map: claim value -> ``read`` / ``write`` / ``admin``.
    """

    def __init__(
        self,
        *,
        jwks_path: Path | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        scope_claim: str = "scope",
        scope_map: dict[str, str] | None = None,
    ) -> None:
        if (jwks_path is None) == (jwks_url is None):
            raise ConfigError("JWT verification needs exactly one of jwt_jwks_path, jwt_jwks_url")
        bad = {k: v for k, v in (scope_map or {}).items() if v not in SCOPE_RANK}
        if bad:
            raise ConfigError(
                f"jwt_scope_map values must be one of {', '.join(SCOPE_RANK)}; got {bad}"
            )
        self.jwks_path = jwks_path
        self.jwks_url = jwks_url
        self.audience = audience
        self.issuer = issuer
        self.scope_claim = scope_claim
        self.scope_map = dict(scope_map or {s: s for s in SCOPE_RANK})
        self._keys: dict[str | None, Any] = {}
        self._loaded_at = 0.0
        self._stamp: float | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> JwtVerifier | None:
        """The verifier the settings describe, or None when no JWKS is configured."""
        path = getattr(settings, "jwt_jwks_path", None)
        url = getattr(settings, "jwt_jwks_url", None)
        if path is None and not url:
            return None
        return cls(
            jwks_path=Path(path) if path is not None else None,
            jwks_url=url or None,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            scope_claim=settings.jwt_scope_claim,
            scope_map=dict(settings.jwt_scope_map),
        )

    # ---- keys -----------------------------------------------------------------------------------
    def _read_jwks(self) -> dict[str, Any]:
        if self.jwks_path is not None:
            return json.loads(self.jwks_path.read_text())
        import urllib.request

        with urllib.request.urlopen(self.jwks_url, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def _refresh(self, force: bool) -> None:
        import jwt

        now = time.monotonic()
        if self.jwks_path is not None:
            try:
                stamp = self.jwks_path.stat().st_mtime
            except OSError:
                log.warning("JWKS file %s unreadable", self.jwks_path)
                return
            if stamp == self._stamp:
                return
        else:
            if self._keys and not force:
                return
            if now - self._loaded_at < JWKS_REFRESH_SECONDS and self._keys:
                return
            stamp = None
        try:
            keyset = jwt.PyJWKSet.from_dict(self._read_jwks())
        except Exception:  # noqa: BLE001 - a broken JWKS refuses tokens, it does not crash
            log.warning("could not load the JWKS", exc_info=True)
            self._loaded_at = now
            return
        self._keys = {k.key_id: k for k in keyset.keys}
        self._stamp = stamp
        self._loaded_at = now

    def _key_for(self, kid: str | None) -> Any | None:
        with self._lock:
            self._refresh(force=False)
            if kid not in self._keys and not (kid is None and len(self._keys) == 1):
                self._refresh(force=True)
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            return self._keys.get(kid)

    # ---- tokens ---------------------------------------------------------------------------------
    def principal(self, token: str) -> Principal | None:
        """The token's caller, or None when it is invalid, expired or maps to no scope."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        found, expires = self._verify(token)
        until = min(expires, now + TOKEN_CACHE_SECONDS) if found else now + REJECTED_CACHE_SECONDS
        if len(self._cache) >= 10_000:
            self._cache = {d: v for d, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= 10_000:
                self._cache.clear()
        self._cache[digest] = (until, found)
        return found

    def _verify(self, token: str) -> tuple[Principal | None, float]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                return None, 0.0
            key = self._key_for(header.get("kid"))
            if key is None:
                return None, 0.0
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError:
            return None, 0.0
        scope = mapped_scope(claims.get(self.scope_claim), self.scope_map)
        if scope is None:
            return None, 0.0
        subject = str(claims.get("sub") or "unknown")
        return Principal(f"jwt:{subject}", scope, subject), float(claims["exp"])
