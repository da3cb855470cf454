"""The one exit-status policy of every ``recstack`` command, and the wrapper that applies it.

Exit statuses:

- ``0``: done.
- ``1`` (``EXIT_DATA``): the command was well formed but the data or state it met was not:
  malformed input rows (``file:line: reason``), unknown users, items, models or versions, a
  database that fails or cannot be reached.
- ``2`` (``EXIT_USAGE``): the command itself was wrong: a bad option value, an invalid or
  missing config or mapping file. Click exits with 2 for its own usage errors too, so a
  script can tell "fix the command" from "fix the data" by the status alone.
- ``130`` (``EXIT_INTERRUPTED``): interrupted with Ctrl-C (128 + SIGINT, as shells report it).

Errors end the command with one ``error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from recstack.errors import ConfigError, RecstackError

EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def settings_problems(exc: Exception) -> str | None:
    """What is wrong with the environment's settings, one clause per variable, when ``exc`` is
    the validation error of ``Settings``; None for any other error.

    >>> from recstack.settings import Settings
    >>> try:
    ...     Settings(worker_timeout_seconds=-1)
    ... except Exception as exc:
    ...     print(settings_problems(exc))
    RECSTACK_WORKER_TIMEOUT_SECONDS=-1: Input should be greater than 0
    """
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError) or exc.title != "Settings":
        return None
    return "; ".join(
        f"RECSTACK_{'_'.join(map(str, e['loc'])).upper()}={e.get('input')}: {e['msg']}"
        for e in exc.errors()
    )


def print_error(message: str) -> None:
    """Print ``error: message`` on stderr."""
    Console(stderr=True).print(
        f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True
    )


def fail(message: str, code: int = EXIT_DATA) -> NoReturn:
    """Print ``error: message`` on stderr and end the command with exit status ``code``."""
    print_error(message)
    raise typer.Exit(code)


def first_line(exc: BaseException) -> str:
    """The driver's own message (first line) rather than SQLAlchemy's wrapper text."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    return detail.splitlines()[0] if detail else type(exc).__name__


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from SQLAlchemy or a database driver.

    Checked against the modules already loaded: a driver's error can only have been raised
    once that driver was imported, so commands that never touch a database import none.
    """
    kinds: list[type[BaseException]] = []
    for module, attr in (("sqlalchemy.exc", "SQLAlchemyError"), ("psycopg", "Error")):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, attr):
            kinds.append(getattr(loaded, attr))
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None:
        kinds.append(sqlite3.Error)
    return isinstance(exc, tuple(kinds))


@contextmanager
def user_errors(database_note: str = "") -> Iterator[None]:
    """Apply the exit-status policy to errors a user can cause inside the block.

    ``ConfigError`` and missing files exit with 2; other ``RecstackError``s and database
    failures with 1 (``database_note`` is appended to the latter, e.g. "; nothing was
    stored"); an interrupt with 130. Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except RecstackError as exc:
        fail(str(exc), EXIT_DATA)
    except FileNotFoundError as exc:
        fail(f"file not found: {exc.filename or exc}", EXIT_USAGE)
    except KeyboardInterrupt:
        Console(stderr=True).print("[red]interrupted[/red]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if not is_database_error(exc):
            raise
        fail(f"database error: {first_line(exc)}{database_note}", EXIT_DATA)
