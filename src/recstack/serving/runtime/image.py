"""Serving images: a store snapshot's histories, written once per model version as arrays that
every worker memory-maps.

Building the engine's histories from 25M stored events cost each worker half a minute and
hundreds of MiB of private memory. An image holds them as ``.npy`` files (a CSR over the served
model's item order, rows sorted by column), written by the first process that needs it under a
file lock; every other worker maps the same pages. Events stored after the image (ids above
its mark) are read from the store and applied on top. A new image is written when that delta
grows past ``MAX_DELTA`` events (the image's arrays plus that delta, without reading the
store's other events), when the store lost users the image holds (a purge, whose images are
deleted at once; written anew), or for a new model version, weighting or history window. A new
model version's image is derived from the latest image of the same weighting and window (its
rows and columns put in the new version's order) rather than read from the store again, and
training writes the image of a version it promotes to the served alias from the snapshot it
fitted on (``loader.serving_preparation``), so that even a home's first start only maps arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting
from recstack.index.stored import file_lock
from recstack.serving.engine import ModelInfo
from recstack.serving.engine.snapshot import ServingSnapshot

if TYPE_CHECKING:
    from recstack.workflows.dataset import StoreSnapshot

log = logging.getLogger("recstack.serving")

IMAGES_DIR = "serving-images"
GRAPHS_DIR = "hnsw"  # item-vector graphs (recstack.index.stored): no user data, kept on a purge
FORMAT = 2  # 2: users in the model's order first
MAX_DELTA = 100_000  # events applied on top of an image (as per-worker live rows) before a new one is written
KEEP = 4  # images kept (the most recently written): a few model versions and slots
ARRAYS = ("indptr", "indices", "data")


@dataclass(frozen=True)
class Image:
    """An opened image: the snapshot (arrays mapped) and the events stored since."""

    snapshot: ServingSnapshot
    delta: pd.DataFrame
    key: str
    built: bool
    seconds: float


def image_basis(weighting: EventWeighting, since: int | None) -> dict[str, Any]:
    """What an image's content depends on, apart from the order of its rows and columns: the
    event weighting and the history window (by day, so a windowed image is rewritten daily).
    Images of one basis hold the same events, so one can be derived from another."""
    return {
        "format": FORMAT,
        "weighting": repr(weighting),
        "since_day": None if since is None else since // 86_400,
    }


def image_key(info: ModelInfo | None, weighting: EventWeighting, since: int | None) -> str:
    """What an image depends on: its basis and the model version (its user and item order)."""
    parts = {**image_basis(weighting, since), "model": info.as_dict() if info is not None else None}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def images_root(home: Path) -> Path:
    return Path(home) / IMAGES_DIR


def graphs_root(home: Path) -> Path:
    """Where the served models' HNSW graphs are saved beside the images."""
    return images_root(home) / GRAPHS_DIR


def delete_images(home: Path) -> None:
    """Remove every image (after a purge: they hold the purged user's history). Workers that
    mapped one keep their pages until they reload; nothing new opens it."""
    root = images_root(home)
    if not root.exists():
        return
    with file_lock(root / "images.lock"):
        for path in root.iterdir():
            if path.is_dir() and path.name != GRAPHS_DIR:
                shutil.rmtree(path, ignore_errors=True)


def open_image(
    home: Path,
    store: Any,
    item_order: IdMap | None,
    info: ModelInfo | None,
    weighting: EventWeighting,
    since: int | None,
    user_order: IdMap | None = None,
) -> Image:
    """The image for ``item_order`` and ``user_order`` (the served model's items and users,
    which come first), written if missing or stale, with the catalogue read fresh from the
    store and the events stored after it."""
    start = time.perf_counter()
    key = image_key(info, weighting, since)
    basis = image_basis(weighting, since)
    root = images_root(home)
    root.mkdir(parents=True, exist_ok=True)
    directory = root / key
    built = False
    with file_lock(root / "images.lock"):
        meta = _read_meta(directory, store)
        if meta is None:
            source = _latest_of_basis(root, basis, store)
            if source is not None:
                meta = _derive(directory, *source, item_order, user_order)
            else:
                meta = _write(directory, store, item_order, user_order, weighting, since, basis)
            built = True
        if not _delta_is_short(meta, store):  # add the events since to the image's arrays
            meta = _extend(directory, meta, store, weighting, since)
            built = True
        if built:
            _prune(root, keep=directory)
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    for array in arrays.values():
        map_in(array)
    users = _ids(json.loads((directory / "users.json").read_text()), user_order)
    item_ids = IdMap(json.loads((directory / "items.json").read_text()))
    matrix = sp.csr_matrix(
        (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(len(users), len(item_ids))
    )
    items, item_meta = store.catalogue()
    delta = store.events_after(int(meta["mark"]["max_event_id"]), since=since)
    snapshot = ServingSnapshot(users, item_ids, matrix, items, item_meta, sorted_rows=True)
    seconds = round(time.perf_counter() - start, 3)
    return Image(snapshot, delta, key, built, seconds)


def write_image(
    home: Path,
    snapshot: StoreSnapshot,
    info: ModelInfo,
    item_order: IdMap | None,
    user_order: IdMap | None,
) -> bool:
    """Write the image of ``info`` (its ``item_order`` and ``user_order``) from ``snapshot``
    unless one is there; whether it was written. The snapshot holds exactly the events up to
    its mark, as ``_write`` reads them."""
    start = time.perf_counter()
    key = image_key(info, snapshot.weighting, snapshot.since)
    root = images_root(home)
    root.mkdir(parents=True, exist_ok=True)
    directory = root / key
    with file_lock(root / "images.lock"):
        if (directory / "meta.json").exists():
            return False
        basis = image_basis(snapshot.weighting, snapshot.since)
        _save_dataset(
            directory, snapshot.dataset, snapshot.mark, item_order, user_order, basis, start
        )
        _prune(root, keep=directory)
    return True


def _ids(ids: list[str], order: IdMap | None) -> IdMap:
    """``ids`` as an IdMap sharing the strings of ``order`` when it is their prefix (the
    model's users: one copy of 162K ids per worker, not two)."""
    n = 0 if order is None else len(order)
    if order is None or ids[:n] != order.ids.tolist():
        return IdMap(ids)
    return IdMap(np.concatenate([order.ids, np.asarray(ids[n:], dtype=object)]))


def _read_meta(directory: Path, store: Any) -> dict[str, Any] | None:
    """The image's metadata; None when the image cannot be used (missing, or users it holds
    were purged)."""
    path = directory / "meta.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    mark = meta["mark"]
    if store.count_users(upto_user_id=mark["max_user_id"]) != mark["users"]:
        return None  # users the image holds were purged
    return meta


def _delta_is_short(meta: dict[str, Any], store: Any) -> bool:
    """Whether the events stored after the image are few enough to apply at every load."""
    return store.change_mark()["max_event_id"] - meta["mark"]["max_event_id"] <= MAX_DELTA


def _latest_of_basis(
    root: Path, basis: dict[str, Any], store: Any
) -> tuple[Path, dict[str, Any]] | None:
    """The most recently written usable image of ``basis`` (any model version), if any."""
    found: list[tuple[float, Path, dict[str, Any]]] = []
    for directory in root.iterdir():
        if directory.name == GRAPHS_DIR or ".tmp" in directory.name:
            continue
        try:
            meta = _read_meta(directory, store)
        except (OSError, ValueError, KeyError):
            continue  # unreadable or of an older format: not a source
        if meta is not None and meta.get("basis") == basis:
            found.append((float(meta["built_at"]), directory, meta))
    if not found:
        return None
    _, directory, meta = max(found, key=lambda entry: entry[0])
    return directory, meta


def _prune(root: Path, keep: Path) -> None:
    """Delete all but the ``KEEP`` most recently written images, never ``keep``. A worker that
    mapped a deleted one keeps its pages; one that opens its version again derives it anew."""
    images = []
    for directory in root.iterdir():
        if directory.is_dir() and directory.name != GRAPHS_DIR and ".tmp" not in directory.name:
            meta = directory / "meta.json"
            written = meta.stat().st_mtime if meta.exists() else 0.0
            images.append((directory == keep, written, directory))
    images.sort(reverse=True)  # ``keep`` first, then the newest
    for _, _, directory in images[KEEP:]:
        shutil.rmtree(directory, ignore_errors=True)


def _derive(
    directory: Path,
    source: Path,
    meta: dict[str, Any],
    item_order: IdMap | None,
    user_order: IdMap | None,
) -> dict[str, Any]:
    """The image at ``source`` with its rows and columns in ``user_order`` and ``item_order``
    first, as the image at ``directory``, with the same mark.

    Images of one basis hold the same weighted events up to their marks, in the order of the
    model version each was written for; re-ordering 25M pairs takes seconds where reading
    them from the store again takes half a minute.
    """
    start = time.perf_counter()
    old_users = IdMap(json.loads((source / "users.json").read_text()))
    old_items = IdMap(json.loads((source / "items.json").read_text()))
    users = old_users if user_order is None else user_order.extend(old_users.ids)
    items = old_items if item_order is None else item_order.extend(old_items.ids)
    arrays = {name: np.load(source / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    indptr = np.asarray(arrays["indptr"])
    padded = sp.csr_matrix(  # one empty row last, for users of the model the image lacks
        (arrays["data"], arrays["indices"], np.append(indptr, indptr[-1])),
        shape=(len(old_users) + 1, len(old_items)),
    )
    rows = old_users.indices(users.ids)
    picked = padded[np.where(rows >= 0, rows, len(old_users))]
    columns = items.indices(old_items.ids).astype(np.int32)
    matrix = sp.csr_matrix(
        (picked.data, columns[picked.indices], picked.indptr), shape=(len(users), len(items))
    )
    matrix.sort_indices()
    how = f"derived from {source.name}"
    return _save(directory, matrix, users, items, meta["mark"], meta["basis"], how, start)


def _extend(
    directory: Path, meta: dict[str, Any], store: Any, weighting: EventWeighting, since: int | None
) -> dict[str, Any]:
    """The image plus the events stored after it, as a new image of the same key.

    Weights of repeated (user, item) pairs add up and an image's window start is fixed by its
    key, so the image's matrix plus the delta's is what a new snapshot would hold; reading a
    few hundred thousand events instead of every stored one keeps a restart after a busy day
    as quick as any other. New users and items are appended to the image's orders.
    """
    start = time.perf_counter()
    mark = store.change_mark()
    after = int(meta["mark"]["max_event_id"])
    delta = store.events_after(after, since=since, upto=mark["max_event_id"])
    weights = np.asarray(weighting.weights(delta["event_type"], delta["value"]), dtype=np.float32)
    kept = ~np.isnan(weights)  # events the weighting drops (below its min_value)
    delta_users, delta_items = delta["user_id"][kept], delta["item_id"][kept]
    old_users = IdMap(json.loads((directory / "users.json").read_text()))
    old_items = IdMap(json.loads((directory / "items.json").read_text()))
    users = old_users.extend(delta_users)
    items = old_items.extend(store.catalogue()[0].ids)  # the whole catalogue, as ``_write``
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    indptr = np.concatenate(
        [arrays["indptr"], np.full(len(users) - len(old_users), arrays["indptr"][-1])]
    )
    shape = (len(users), len(items))
    matrix = sp.csr_matrix((arrays["data"], arrays["indices"], indptr), shape=shape)
    added = sp.csr_matrix(
        (weights[kept], (users.indices(delta_users), items.indices(delta_items))), shape=shape
    )
    matrix = (matrix + added).tocsr()
    matrix.sort_indices()
    how = f"extended by {len(delta)} events"
    return _save(directory, matrix, users, items, mark, meta.get("basis"), how, start)


def _write(
    directory: Path,
    store: Any,
    item_order: IdMap | None,
    user_order: IdMap | None,
    weighting: EventWeighting,
    since: int | None,
    basis: dict[str, Any],
) -> dict[str, Any]:
    """Snapshot the store up to its current mark and write the arrays (atomically)."""
    start = time.perf_counter()
    mark = store.change_mark()
    dataset = store.snapshot(weighting, since=since, upto_event_id=mark["max_event_id"])
    return _save_dataset(directory, dataset, mark, item_order, user_order, basis, start)


def _save_dataset(
    directory: Path,
    dataset: Dataset,
    mark: dict[str, Any],
    item_order: IdMap | None,
    user_order: IdMap | None,
    basis: dict[str, Any],
    start: float,
) -> dict[str, Any]:
    """The image of ``dataset`` (the store's events up to ``mark``) in the models' orders."""
    ids = dataset.items if item_order is None else item_order.extend(dataset.items.ids)
    matrix = ServingSnapshot.of(dataset).matrix_over(ids)
    users = dataset.users
    if user_order is not None:
        users = user_order.extend(dataset.users.ids)
        rows = dataset.users.indices(users.ids)  # -1: a user the store no longer has
        padded = sp.vstack([matrix, sp.csr_matrix((1, matrix.shape[1]), dtype=matrix.dtype)])
        matrix = padded.tocsr()[np.where(rows >= 0, rows, matrix.shape[0])]
    return _save(directory, matrix, users, ids, mark, basis, "written", start)


def _save(
    directory: Path,
    matrix: sp.csr_matrix,
    users: IdMap,
    items: IdMap,
    mark: dict[str, Any],
    basis: dict[str, Any] | None,
    how: str,
    start: float,
) -> dict[str, Any]:
    """Write an image's arrays, orders and metadata, replacing ``directory`` atomically (a
    worker that mapped the old files keeps reading them until it reloads); ``basis`` is what
    lets later images be derived from it; ``how`` and ``start`` (``perf_counter``) are for the
    log line."""
    tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    index = np.int32 if matrix.nnz < 2**31 else np.int64
    np.save(tmp / "indptr.npy", np.asarray(matrix.indptr, dtype=index))
    np.save(tmp / "indices.npy", np.asarray(matrix.indices, dtype=np.int32))
    np.save(tmp / "data.npy", np.asarray(matrix.data, dtype=np.float32))
    (tmp / "users.json").write_text(json.dumps(users.ids.tolist()))
    (tmp / "items.json").write_text(json.dumps(items.ids.tolist()))
    meta = {
        "format": FORMAT,
        "basis": basis,
        "mark": mark,
        "nnz": int(matrix.nnz),
        "built_at": time.time(),
    }
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    log.info(
        "serving image %s in %.1fs: %d users, %d items, %d pairs",
        how,
        time.perf_counter() - start,
        len(users),
        len(items),
        matrix.nnz,
    )
    return meta


PAGE = 4096


def map_in(array: np.ndarray) -> None:
    """Fault every page of a memory-mapped array into this process now (one byte read per
    page), so that requests touching a user's row for the first time do not, and the memory
    the server reports at idle is what it holds under traffic over all users.

    >>> map_in(np.arange(10_000))  # any array; a plain one is only read
    """
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    int(flat[::PAGE].sum())
