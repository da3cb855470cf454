"""Output helpers every CLI module shares: consoles, warnings and JSON.

Results go to stdout (so ``--json`` output can be piped); progress bars, warnings and errors go
to stderr. Errors and exit statuses are ``recstack.cli.errors``' job.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape


def out() -> Console:
    """A console on stdout, made per call so redirection and COLUMNS apply."""
    return Console()


def err() -> Console:
    """A console on stderr for progress, warnings and errors."""
    return Console(stderr=True)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    err().print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def emit_json(payload: Any) -> None:
    """Write exactly one JSON document and a newline to stdout (no rich markup or wrapping)."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()
