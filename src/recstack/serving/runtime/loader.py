"""Building an Engine from the store and the model registry (server start and hot reload).

The served model is the registered ``settings.model_name`` version aliased
``settings.serving_alias`` (memory-mapped from the registry's local cache). A content model for
semantic search and cold items comes from the same model when it is a content model, or from
``<model_name>-content`` under the same alias when that is registered. With no registered
model the engine serves popularity computed from the store and ``/readyz`` says so. Extra slots
may also serve ``popularity`` or a list set stored by batch scoring (``precomputed:NAME``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting
from recstack.errors import ConfigError, NotFoundError
from recstack.models.base import FactorRecommender
from recstack.models.protocols import CompiledScoring, TextSearchable
from recstack.serving.engine import Engine, ModelInfo
from recstack.serving.engine.results import FALLBACK
from recstack.serving.engine.snapshot import ServingSnapshot
from recstack.serving.engine.vectors import ItemVectorSearch, VectorBackend
from recstack.serving.runtime.image import graphs_root, map_in, open_image, write_image
from recstack.settings import Settings

if TYPE_CHECKING:  # training's modules: not imported by a serving worker's start
    from recstack.workflows.dataset import StoreSnapshot
    from recstack.workflows.train import PrepareServing

log = logging.getLogger("recstack.serving")

CONTENT_SUFFIX = "-content"
COMPILED_DIR = "compiled"  # models' scoring compiled to machine code, under the home
POPULARITY_REF = "popularity"  # a slot reference that loads no model
PRECOMPUTED_PREFIX = "precomputed:"  # a slot reference to a list set in the store


@dataclass
class LoadReport:
    """What a load found: notes for ``/readyz`` and the seconds it took."""

    notes: list[str] = field(default_factory=list)
    model_loaded: bool = False
    seconds: float = 0.0


def event_weighting(settings: Settings) -> EventWeighting:
    """The weighting the server applies to live events, from ``settings.event_weights``."""
    return settings.weighting()


def vector_backend(settings: Settings) -> VectorBackend:
    """The settings' vector backend; with serving images on, its HNSW graphs are saved beside
    them, so workers and reloads map one graph per model instead of each building it."""
    backend = VectorBackend.of(settings)
    if settings.serving_images:
        backend = replace(backend, index_cache=str(graphs_root(settings.home)))
    return backend


def serving_preparation(settings: Settings) -> PrepareServing:
    """What ``train_and_register`` calls after a promotion: when the version is the one the
    server loads (``settings.model_name`` under the serving alias), write its serving image
    from the snapshot it was fitted on and save its HNSW graph, through the calls a start
    makes, so the first start maps both instead of reading every event and building a graph."""

    def prepare(model: Any, version: Any, snapshot: StoreSnapshot) -> None:
        alias = settings.serving_alias or "champion"
        if version.name != settings.model_name or alias not in version.aliases:
            return
        if settings.serving_images:
            info = ModelInfo(model.name, int(version.version), version.name)
            write_image(settings.home, snapshot, info, model.items, model.users)
            if isinstance(model, FactorRecommender):  # what ``item_state`` indexes
                ItemVectorSearch.build(model.item_vectors(), vector_backend(settings))
        if isinstance(model, CompiledScoring):
            model.compile_scoring(compiled_root(settings))

    return prepare


def compiled_root(settings: Settings) -> Path:
    """Where models' compiled scoring code is cached (one file per model text and CPU)."""
    return Path(settings.home) / COMPILED_DIR


def registry_configured(settings: Settings) -> bool:
    """False when the default local registry was never created (nothing can be registered)."""
    if settings.mlflow_tracking_uri:
        return True
    return (settings.home / "mlflow.db").exists()


def load_registered(settings: Settings, name: str) -> tuple[Any, ModelInfo] | None:
    """The model registered as ``name`` under the serving alias, or None if there is none."""
    try:
        model, version = _load_version(settings, name, settings.serving_alias, None)
    except NotFoundError:
        return None
    return model, ModelInfo(model.name, version, name)


def _load_version(
    settings: Settings, name: str, alias: str | None, version: int | None
) -> tuple[Any, int]:
    """A registered model and its version: read straight from a local registry and the load
    cache when they can tell (no MLflow start: two seconds of every worker's start), through
    MLflow otherwise (a tracking server, a version not downloaded yet)."""
    from recstack.registry import ModelRegistry

    registry = ModelRegistry(settings)
    alias = alias or "champion"
    cached = registry.load_cached(name, alias=alias, version=version)
    if cached is not None:
        model, found = cached
    else:
        model, info = registry.load_with_info(name, alias=alias, version=version)
        found = int(info.version)
    if isinstance(model, CompiledScoring):  # serves at once; faster when the code is ready
        model.compile_scoring(compiled_root(settings), background=True)
    return model, found


def parse_ref(ref: str, default_name: str) -> tuple[str, str | None, int | None]:
    """``(registered name, alias, version)`` of a slot reference: an alias (``challenger``), a
    version (``7``), or either after a registered name (``other:7``, ``other:champion``).

    >>> parse_ref("challenger", "recstack")
    ('recstack', 'challenger', None)
    >>> parse_ref("other:7", "recstack")
    ('other', None, 7)
    """
    name, _, rest = ref.rpartition(":")
    name = name or default_name
    if not rest:
        raise ConfigError(f"empty model reference {ref!r}: give an alias or a version")
    if rest.isdigit():
        return name, None, int(rest)
    return name, rest, None


def load_precomputed(store: Any, name: str, items: IdMap | None = None) -> tuple[Any, ModelInfo]:
    """The store's list set ``name`` as a model (NotFoundError naming the stored sets).

    The lists are indexed over ``items`` (the engine's catalogue) first, so catalogue items
    missing from every list are not taken for items added after scoring. The version is the
    set's generation: it changes each time the set is replaced.
    """
    from recstack.models.precomputed import PrecomputedRecommender

    if store is None:
        raise NotFoundError("precomputed lists need the store, and none is connected")
    if not name:
        raise ConfigError("give the list set's name: precomputed:NAME")
    lists = store.precomputed.load(name)
    model = PrecomputedRecommender.from_lists(
        lists.users, lists.items, lists.indptr, lists.item_idx, lists.scores
    )
    if items is not None:
        model = model.over_items(items)
    return model, ModelInfo(model.name, lists.info.generation, name)


def load_slot_model(
    settings: Settings, ref: str, store: Any = None, items: IdMap | None = None
) -> tuple[Any, ModelInfo]:
    """The registered model a slot reference names (NotFoundError when there is none);
    ``popularity`` is no model at all: the slot serves the live popular items;
    ``precomputed:NAME`` serves the store's list set ``NAME`` (``load_precomputed``)."""
    if ref == POPULARITY_REF:
        return None, FALLBACK
    if ref.startswith(PRECOMPUTED_PREFIX):
        return load_precomputed(store, ref[len(PRECOMPUTED_PREFIX) :], items)

    if not registry_configured(settings):
        raise NotFoundError("no model registry yet: train and register a model first")
    name, alias, version = parse_ref(ref, settings.model_name)
    model, found = _load_version(settings, name, alias, version)
    return model, ModelInfo(model.name, found, name)


def slot_specs(settings: Settings) -> dict[str, str]:
    """The extra slots to load at start: slot name -> reference (``serving_slots``)."""
    specs: dict[str, str] = {}
    for spec in settings.serving_slots:
        slot, sep, ref = spec.partition("=")
        specs[slot.strip()] = (ref if sep else slot).strip()
    return specs


def load_engine(settings: Settings, store: Any) -> tuple[Engine, LoadReport]:
    """A fresh Engine from the registry's serving model and a snapshot of ``store``."""
    start = time.perf_counter()
    report = LoadReport()
    model = content = None
    model_info = content_info = None
    if registry_configured(settings):
        found = load_registered(settings, settings.model_name)
        if found is not None:
            model, model_info = found
            report.model_loaded = True
            if isinstance(model, TextSearchable):
                content, content_info = model, model_info
            else:
                extra = load_registered(settings, settings.model_name + CONTENT_SUFFIX)
                if extra is not None:
                    content, content_info = extra
    if model is None:
        report.notes.append(
            f"no model registered as {settings.model_name!r} with alias "
            f"{settings.serving_alias!r}: serving popularity from the store"
        )
    if content is None:
        report.notes.append("no content model: /v1/search is unavailable")
    weighting = event_weighting(settings)
    since = settings.history_since()
    delta = None
    if settings.serving_images:
        items = model.items if model is not None else None
        users = model.users if model is not None else None
        image = open_image(settings.home, store, items, model_info, weighting, since, users)
        for name in ("user_factors", "item_factors"):  # mapped from the registry's files
            if isinstance(getattr(model, name, None), np.memmap):
                map_in(getattr(model, name))
        snapshot, delta = image.snapshot, image.delta
        verb = "written" if image.built else "mapped"
        report.notes.append(f"serving image {image.key} {verb} in {image.seconds}s")
    else:
        snapshot = ServingSnapshot.of(store.snapshot(weighting, since=since))
    engine = Engine.from_snapshot(
        snapshot,
        model,
        content=content,
        model_info=model_info,
        content_info=content_info,
        weighting=weighting,
        ann_threshold=vector_backend(settings),
        history_since=since,
        slot=settings.serving_alias,
    )
    if delta is not None and len(delta):
        engine.apply_events(
            delta["user_id"].tolist(),
            delta["item_id"].tolist(),
            delta["event_type"].tolist(),
            [None if v != v else v for v in delta["value"].tolist()],
        )
    if content is not None:  # load the text encoder now, not in the first search request
        try:
            content.encode_query("warm up")
        except Exception:  # noqa: BLE001 - search will report the problem when asked
            log.exception("the content model's text encoder could not be loaded")
            report.notes.append("the content model's text encoder failed to load")
    report.seconds = round(time.perf_counter() - start, 3)
    log.info(
        "engine loaded in %.2fs: model=%s items=%d users=%d",
        report.seconds,
        engine.model_info.as_dict(),
        engine.n_items,
        engine.histories.n_users,
    )
    return engine, report
