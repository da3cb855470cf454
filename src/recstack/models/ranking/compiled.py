"""The reranker's trees compiled to machine code (lleaves): the booster's own scores, ~10x faster.

LightGBM's ``predict`` walks its trees in an interpreter: 200 candidates through 150 trees take
about 0.7 ms of a served request, most of the reranker's cost. lleaves (part of the ``ranking``
extra) compiles the same text model with LLVM into one function per forest, which returns the
same doubles in about 0.07 ms. Compiling takes seconds, so the object code is cached in a
directory under a key of the model text, the lleaves version and the host CPU (the code uses
that CPU's instructions; another machine compiles its own), written atomically and under a file
lock so workers that start together compile once. When lleaves or LLVM is unavailable, or the
cache cannot be written, nothing is compiled and the booster predicts as before.

Every promoted version adds about half a megabyte, so each load marks its key as used (the
model text's mtime) and code no model loaded for ``UNUSED_DAYS`` is removed when another is
loaded: a version rolled back to after that compiles again, in seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger("recstack.models")

Predictor = Callable[[np.ndarray], np.ndarray]
UNUSED_DAYS = 30.0


def cache_key(model_text: str) -> str:
    """What the compiled code depends on: the trees, the compiler and this CPU."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    host = f"{llvm.get_host_cpu_name()}|{llvm.get_host_cpu_features().flatten()}"
    parts = (model_text, version("lleaves"), llvm.llvm_version_info, host)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def compile_predictor(model_text: str, cache_dir: Path) -> Predictor | None:
    """A function ``features -> float32 scores`` running ``model_text``'s trees as compiled
    code from ``cache_dir`` (compiled there first when missing), or None when it cannot be."""
    try:
        import lleaves
    except ImportError:
        return None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = cache_key(model_text)
        code = cache_dir / f"{key}.o"
        source = cache_dir / f"{key}.txt"
        with open(cache_dir / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one compiler per key; the others then load
            if not source.exists():
                _write_atomic(source, model_text.encode())
            else:
                _mark_used(source)
            model = lleaves.Model(model_file=str(source))
            if code.exists():
                model.compile(cache=str(code))
            else:
                with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                    partial = Path(tmp) / "code.o"
                    model.compile(cache=str(partial))
                    os.replace(partial, code)
    except Exception as exc:  # LLVM errors, a read-only or full disk: the booster still works
        log.warning("reranker not compiled (%s); LightGBM predicts", exc)
        return None
    try:
        prune(cache_dir, keep=key)
    except OSError as exc:  # a cache someone else cleans up: nothing to do about it here
        log.warning("compiled code not pruned (%s)", exc)

    def predict(features: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(features, dtype=np.float64)
        return model.predict(rows, n_jobs=1).astype(np.float32)

    return predict


def prune(cache_dir: Path, keep: str, max_age_s: float = UNUSED_DAYS * 86_400) -> list[str]:
    """Remove the code and text of every key but ``keep`` that no load marked as used within
    ``max_age_s``; returns the keys removed. A key whose lock is held (a worker compiling or
    loading it now) is left alone, and lock files stay: unlinking one a worker waits on would
    let the next worker lock a new file beside it."""
    now = time.time()
    removed = []
    for text in cache_dir.glob("*.txt"):
        key = text.stem
        try:
            if key == keep or now - text.stat().st_mtime < max_age_s:
                continue
        except FileNotFoundError:
            continue
        with open(cache_dir / f"{key}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for suffix in (".o", ".txt"):
                (cache_dir / f"{key}{suffix}").unlink(missing_ok=True)
        removed.append(key)
    return removed


def _mark_used(source: Path) -> None:
    """Touch ``source`` so ``prune`` keeps its code (a read-only cache is still loaded)."""
    try:
        os.utime(source)
    except OSError:
        pass


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # readable like the compiled code beside it (mkstemp gives 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
