"""HNSW graphs kept on disk by the vectors they index, so a process maps one instead of building it.

Building the graph over a 62K-item model costs each server worker about a second at every
start and reload, for a result that depends only on the item vectors and the graph settings.
``load_or_build_hnsw`` names a graph by a digest of exactly those, builds it once (under a
file lock, so concurrent workers wait for one build rather than each building its own) and
otherwise memory-maps the saved file, whose pages every process then shares. Graphs are written
to a temporary directory and renamed, never changed in place; the least recently used beyond
``KEEP`` are deleted (a process that mapped one keeps its pages).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from recstack.index.base import as_vectors
from recstack.index.faiss_index import FaissHNSWIndex, _faiss

log = logging.getLogger("recstack.index")

KEEP = 8  # graphs kept per directory (a few model versions, slots and content models)
LOCK = "graphs.lock"


def graph_key(vectors: np.ndarray, M: int, ef_construction: int) -> str:  # noqa: N803
    """What a graph depends on: the vectors (shape and bytes), the build settings and FAISS.

    >>> v = np.zeros((2, 3), dtype=np.float32)
    >>> graph_key(v, 16, 80) == graph_key(v.copy(), 16, 80), graph_key(v, 16, 80) == graph_key(v, 8, 80)
    (True, False)
    """
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    digest = hashlib.blake2b(digest_size=16)
    header = f"{v.shape}|{M}|{ef_construction}|{_faiss().__version__}"
    digest.update(header.encode())
    digest.update(memoryview(v).cast("B"))
    return digest.hexdigest()


def load_or_build_hnsw(
    root: Path | str,
    vectors: np.ndarray,
    *,
    M: int,  # noqa: N803 - the HNSW literature's name
    ef_construction: int,
    ef_search: int,
) -> FaissHNSWIndex:
    """The HNSW graph over ``vectors`` saved under ``root``, mapped; built and saved if missing.

    A saved graph that cannot be read is built again; where ``root`` cannot be written the
    graph is built and not saved. The search setting ``ef_search`` is not part of the graph and
    is applied after loading.
    """
    v = as_vectors(vectors)
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / LOCK).touch()
    except OSError:
        log.warning("cannot save HNSW graphs in %s: building in memory", root, exc_info=True)
        return FaissHNSWIndex(M=M, ef_construction=ef_construction, ef_search=ef_search).build(v)
    key = graph_key(v, M, ef_construction)
    directory = root / key
    with file_lock(root / LOCK):
        if (directory / "index.faiss").exists():
            try:
                index = FaissHNSWIndex.load(directory, mmap=True)
            except Exception:  # noqa: BLE001 - a damaged file is rebuilt below
                log.warning("HNSW graph %s unreadable: building it again", directory, exc_info=True)
            else:
                if len(index) == len(v):
                    index.ef_search = int(ef_search)
                    index._index.hnsw.efSearch = index.ef_search
                    os.utime(directory)  # recently used: kept by _prune
                    return index
        start = time.perf_counter()
        index = FaissHNSWIndex(M=M, ef_construction=ef_construction, ef_search=ef_search)
        index.build(v)
        tmp = root / f".{key}.tmp{os.getpid()}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            index.save(tmp)
            shutil.rmtree(directory, ignore_errors=True)
            tmp.rename(directory)
        except OSError:  # a full disk: serve the graph built, save it another time
            log.warning("HNSW graph not saved in %s", root, exc_info=True)
            shutil.rmtree(tmp, ignore_errors=True)
            return index
        log.info("HNSW graph over %d vectors built in %.1fs", len(v), time.perf_counter() - start)
        _prune(root, KEEP)
    return index


def _prune(root: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used graphs (called under the lock)."""
    graphs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    graphs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in graphs[keep:]:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """One process at a time (workers of one server, or several servers sharing the home)."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
