"""Dashboard sessions: the credential sealed in a cookie, and the CSRF token bound to it.

A person logs in with an API key (or a JWT). The cookie holds that credential encrypted and
authenticated with AES-GCM under a server secret, with a random session id and an expiry; it
is HttpOnly (no script reads it) and SameSite=Strict. Every request re-checks the credential
through the app's own verifier (the same cached check the API runs), so a revoked key or an
expired token ends the session within seconds and no session store is needed across workers.

CSRF: the synchronizer token of a session is ``HMAC(secret, session id)``, rendered into every
form and the page's meta tag (htmx sends it as ``X-CSRF-Token``); every POST must carry it. The
login form, before there is a session, uses a double-submit cookie.

The secret is ``settings.ui_secret`` or, when unset, 32 random bytes kept in
``home/ui_secret`` (created once, mode 0600) so every worker of one host shares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("recstack.ui")

SESSION_COOKIE = "recstack_session"
LOGIN_COOKIE = "recstack_login_csrf"
SESSION_SECONDS = 8 * 3600


def load_secret(settings: Any) -> bytes:
    """The dashboard's secret: the configured one, else the one kept under ``home``."""
    configured = getattr(settings, "ui_secret", None)
    if configured:
        return configured.encode()
    path = Path(settings.home) / "ui_secret"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be writing it right now
            text = path.read_text().strip()
            if text:
                return text.encode()
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty: delete it or set RECSTACK_UI_SECRET") from None
    except OSError as exc:  # a read-only home: sessions then live as long as this process
        log.warning(
            "cannot keep the dashboard secret in %s (%s): set RECSTACK_UI_SECRET so that "
            "every worker accepts the same sessions",
            path,
            exc,
        )
        return secrets.token_hex(32).encode()
    with os.fdopen(fd, "w") as handle:
        value = secrets.token_hex(32)
        handle.write(value)
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """What a valid cookie holds."""

    credential: str
    sid: str
    expires: float


class SessionSealer:
    """Seals and opens session cookies, and makes and checks CSRF tokens."""

    def __init__(self, secret: bytes, lifetime: float = SESSION_SECONDS) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(hashlib.sha256(b"recstack-ui-session:" + secret).digest())
        self._csrf_key = hashlib.sha256(b"recstack-ui-csrf:" + secret).digest()
        self.lifetime = lifetime

    def seal(self, credential: str, now: float | None = None) -> str:
        """A new session's cookie value for ``credential``."""
        now = time.time() if now is None else now
        body = json.dumps(
            {"c": credential, "sid": secrets.token_urlsafe(16), "exp": now + self.lifetime}
        ).encode()
        nonce = secrets.token_bytes(12)
        return _b64(nonce + self._aead.encrypt(nonce, body, SESSION_COOKIE.encode()))

    def open(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds, or None if it is missing, forged or expired."""
        if not value or len(value) > 8192:
            return None
        from cryptography.exceptions import InvalidTag

        try:
            raw = _unb64(value)
            body = json.loads(self._aead.decrypt(raw[:12], raw[12:], SESSION_COOKIE.encode()))
            session = Session(str(body["c"]), str(body["sid"]), float(body["exp"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session

    def csrf_token(self, sid: str) -> str:
        """The synchronizer token of session ``sid``."""
        return hmac.new(self._csrf_key, sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, sid: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token(sid), str(presented))


def new_login_token() -> str:
    """A random value for the login form's double-submit cookie."""
    return secrets.token_urlsafe(24)


def login_token_ok(cookie: str | None, field: str | None) -> bool:
    """Whether the login form's hidden field matches its cookie (double submit).

    >>> login_token_ok("abc", "abc"), login_token_ok("abc", "abd"), login_token_ok(None, None)
    (True, False, False)
    """
    return bool(cookie) and bool(field) and hmac.compare_digest(str(cookie), str(field))
