"""Console helpers every CLI module shares: output consoles, progress bars, one-line failures.

Results go to stdout (so ``--json`` output can be piped); progress bars, warnings and errors go
to stderr. Errors a user can cause end the command with one readable line, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from recstack.errors import ConfigError, RecstackError
from recstack.progress import shared_progress

EXIT_DATA = 1  # bad input data, unknown ids, a failing database
EXIT_USAGE = 2  # bad options, config or missing files (Click uses 2 for usage errors too)


def out() -> Console:
    """A console on stdout, made per call so redirection and COLUMNS apply."""
    return Console()


def err() -> Console:
    """A console on stderr for progress, warnings and errors."""
    return Console(stderr=True)


@contextmanager
def progress() -> Iterator[Progress]:
    """The shared rich Progress (stderr); library bars started inside join the same display."""
    with shared_progress() as bars:
        yield bars


def fail(message: str, code: int = EXIT_DATA) -> NoReturn:
    """Print ``error: message`` on stderr and end the command with exit status ``code``."""
    err().print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    err().print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def emit_json(payload: Any) -> None:
    """Write exactly one JSON document and a newline to stdout (no rich markup or wrapping)."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors a user can cause into one line on stderr and a non-zero exit status.

    ``ConfigError`` and missing files exit with 2, other ``RecstackError``s (bad data with
    ``file:line: reason``, unknown ids) with 1, an interrupt with 130.
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
        err().print("[red]interrupted[/red]")
        raise typer.Exit(130) from None
