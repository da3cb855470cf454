"""Session cookies and CSRF tokens: sealed, bound to the secret, expiring."""

from __future__ import annotations

import os
import stat

from recstack.settings import Settings
from recstack.ui.session import SessionSealer, load_secret


def test_sealed_sessions_open_only_with_the_same_secret_and_before_expiry():
    sealer = SessionSealer(b"one secret", lifetime=60)
    cookie = sealer.seal("rk_abc_secret", now=1000.0)
    assert "rk_abc_secret" not in cookie
    session = sealer.open(cookie, now=1030.0)
    assert session is not None and session.credential == "rk_abc_secret"
    assert sealer.open(cookie, now=1061.0) is None
    assert SessionSealer(b"another secret").open(cookie, now=1030.0) is None
    tampered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    assert sealer.open(tampered, now=1030.0) is None
    assert sealer.open("", now=1030.0) is None and sealer.open("!!", now=1030.0) is None


def test_csrf_tokens_are_per_session():
    sealer = SessionSealer(b"s")
    a = sealer.open(sealer.seal("k"))
    b = sealer.open(sealer.seal("k"))
    assert a.sid != b.sid
    assert sealer.csrf_ok(a.sid, sealer.csrf_token(a.sid))
    assert not sealer.csrf_ok(a.sid, sealer.csrf_token(b.sid))
    assert not sealer.csrf_ok(a.sid, None) and not sealer.csrf_ok(a.sid, "")


def test_the_secret_is_kept_once_per_home_and_private(tmp_path):
    settings = Settings(home=tmp_path / "home")
    first = load_secret(settings)
    assert load_secret(settings) == first and len(first) == 64
    mode = stat.S_IMODE(os.stat(tmp_path / "home" / "ui_secret").st_mode)
    assert mode == 0o600
    assert load_secret(Settings(home=tmp_path / "home", ui_secret="configured")) == b"configured"


def test_an_unwritable_home_still_starts(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = Settings(home=blocker / "home")  # cannot be created, even by root
    first, second = load_secret(settings), load_secret(settings)
    assert len(first) == 64 and first != second  # a secret per process, with a warning
