"""All-or-nothing job output: write into a staging directory next to the target, then swap.

A Spark job that fails half-way leaves part files behind; writing them under a hidden sibling
directory and renaming it over the target only after everything (data and manifest) is written
means readers see either the previous output or the new one, never a mix. Renames are atomic on
a local or shared POSIX filesystem, which is where these jobs write.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MANIFEST = "_recstack.json"


@contextmanager
def staged_output(target: Path | str) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces ``target`` whole.

    On any exception the staging directory is removed and ``target`` is left as it was.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with staged_output(root / "out") as tmp:
    ...     _ = (tmp / "a.txt").write_text("new")
    >>> (root / "out" / "a.txt").read_text()
    'new'
    >>> try:
    ...     with staged_output(root / "out") as tmp:
    ...         _ = (tmp / "a.txt").write_text("half")
    ...         raise RuntimeError("job failed")
    ... except RuntimeError:
    ...     pass
    >>> (root / "out" / "a.txt").read_text(), sorted(p.name for p in root.iterdir())
    ('new', ['out'])
    """
    final = Path(target).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staging = final.parent / f".{final.name}.staging-{token}"
    retired = final.parent / f".{final.name}.old-{token}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    shutil.rmtree(retired, ignore_errors=True)


def write_manifest(directory: Path, content: dict[str, Any]) -> Path:
    """The job's summary (counts, inputs, settings) as ``_recstack.json`` in ``directory``."""
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(content, indent=2, default=str))
    return path


def read_manifest(directory: Path | str) -> dict[str, Any]:
    """The summary a job wrote into ``directory`` (empty if there is none)."""
    path = Path(directory) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}
