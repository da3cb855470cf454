"""One exit-status policy for every command: 1 bad data or state, 2 bad usage, 130 interrupt."""

from __future__ import annotations

import sqlite3

import pytest
import typer
from typer.testing import CliRunner

from recstack.cli.errors import EXIT_DATA, EXIT_INTERRUPTED, EXIT_USAGE, user_errors
from recstack.errors import ConfigError, DataError, NotFoundError


def _exit_code(exc: BaseException, note: str = "") -> int:
    with pytest.raises(typer.Exit) as info, user_errors(database_note=note):
        raise exc
    return info.value.exit_code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad option"), EXIT_USAGE),
        (FileNotFoundError(2, "No such file", "x.toml"), EXIT_USAGE),
        (DataError("bad row", file="a.csv", line=3), EXIT_DATA),
        (NotFoundError("no such model"), EXIT_DATA),
        (sqlite3.OperationalError("database is locked"), EXIT_DATA),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
    ],
)
def test_exit_status_by_kind_of_error(error, code):
    assert _exit_code(error) == code


def test_messages_are_one_line_on_stderr():
    app = typer.Typer()

    @app.command()
    def locked() -> None:
        with user_errors(database_note="; nothing was stored"):
            raise sqlite3.OperationalError("database is locked\nmore detail")

    result = CliRunner().invoke(app, [])
    assert result.exit_code == EXIT_DATA
    assert result.stderr == "error: database error: database is locked; nothing was stored\n"


def test_bugs_keep_their_traceback():
    with pytest.raises(ZeroDivisionError), user_errors():
        raise ZeroDivisionError


def test_an_invalid_setting_is_a_usage_error_naming_the_variable(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("recstack")
    env = {
        **os.environ,
        "RECSTACK_HOME": str(tmp_path / "home"),
        "RECSTACK_WORKER_TIMEOUT_SECONDS": "-1",
        "RECSTACK_CACHE_TTL_SECONDS": "soon",
    }
    done = subprocess.run(
        [str(script), "keys", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == EXIT_USAGE
    assert "RECSTACK_WORKER_TIMEOUT_SECONDS=-1: Input should be greater than 0" in done.stderr
    assert "RECSTACK_CACHE_TTL_SECONDS=soon" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home").exists()  # nothing was created
