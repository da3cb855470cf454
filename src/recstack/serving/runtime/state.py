"""Everything one app instance holds: settings, store, the current engine, cache, limits, jobs.

The engine sits in an ``LiveEngine`` together with the cache clock it was built at and the
generation it last synced per user. A reload builds a complete new engine off to the side and
replaces the slot in one assignment, so requests in flight finish on the old engine and new
ones start on the new one — no request fails during a swap. Changes that arrive while a new
engine is being built (item upserts, purges) are replayed onto it before the swap; events are
caught by user generations (they move past the clock the new engine was built at).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recstack.errors import ConfigError, NotFoundError, UnavailableError
from recstack.serving.engine import Engine, ModelInfo
from recstack.serving.runtime.broadcast import Broadcast, FileBroadcast, make_broadcast
from recstack.serving.runtime.cache import ResponseCache, make_cache
from recstack.serving.runtime.jobs import JobManager
from recstack.serving.runtime.keys import KeyVerifier, Principal
from recstack.serving.runtime.loader import (
    load_engine,
    load_slot_model,
    slot_specs,
    vector_backend,
)
from recstack.serving.runtime.metrics import Metrics
from recstack.serving.runtime.ratelimit import RateLimiter, make_rate_limiter
from recstack.serving.runtime.store_metrics import StoreCollector
from recstack.serving.runtime.supervisor import STORE_CHECKED_ENV
from recstack.serving.runtime.tokens import JwtVerifier, looks_like_jwt
from recstack.settings import Settings

log = logging.getLogger("recstack.serving")

Change = Callable[[Engine], None]


@dataclass
class LiveEngine:
    """The engine being served plus what it knows about per-user freshness."""

    engine: Engine
    built_clock: int = 0
    notes: list[str] = field(default_factory=list)
    loaded_at: float = field(default_factory=time.time)
    synced: dict[str, int] = field(default_factory=dict)

    def in_sync(self, user_id: str, generation: int) -> bool:
        """Whether the engine's copy of the user reflects ``generation``."""
        if user_id in self.synced:
            return self.synced[user_id] == generation
        return generation <= self.built_clock


class AppState:
    """The state of one app; routes reach it as ``request.app.state.recstack``."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Any | None = None,
        engine: Engine | None = None,
        key_prefix: str = "recstack:",
        on_message: Callable[[AppState, dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_message = on_message
        self.store = store
        self.key_prefix = key_prefix
        self.metrics = Metrics()
        self.cache: ResponseCache = make_cache(
            settings.redis_url,
            settings.cache_ttl_seconds,
            key_prefix,
            settings.worker_state_dir,
        )
        self.limiter: RateLimiter = make_rate_limiter(
            settings.redis_url, settings.rate_limit_per_minute, key_prefix
        )
        self.verifier = KeyVerifier(self._verify_key)
        self.jwt: JwtVerifier | None = JwtVerifier.from_settings(settings)
        self.jobs = JobManager(store_of=lambda: self.store)
        self.metrics.add_collector(StoreCollector(lambda: self.store, settings))
        self.broadcast: Broadcast | FileBroadcast | None = None
        self.startup_error: str | None = None
        self._owns_store = False
        self._slot: LiveEngine | None = None
        self._reload_lock = threading.Lock()
        self._change_lock = threading.Lock()
        self._pending: list[Change] | None = None
        self.slot_refs: dict[str, str] = slot_specs(settings)
        if engine is not None:
            self.install(engine, [], self.cache_clock())

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect the store, load the engine and start listening to other workers."""
        listener = self.broadcast is None
        if listener:  # before the load: a change made meanwhile is then heard, not lost
            self.broadcast = make_broadcast(
                self.settings.redis_url, self.settings.worker_state_dir, self.key_prefix
            )
        try:
            if self.store is None:
                from recstack.store import Store

                url = self.settings.store_url
                if os.environ.get(STORE_CHECKED_ENV) == url:  # migrated by `recstack serve`
                    self.store = Store(url)
                else:
                    self.store = Store.from_settings(self.settings)
                self._owns_store = True
            if self._slot is None:
                self.reload()
        except Exception as exc:  # noqa: BLE001 - the server stays up and /readyz says why
            log.exception("could not load the engine")
            self.startup_error = f"{type(exc).__name__}: {exc}"
        if listener and self.broadcast is not None:
            self.broadcast.start(self._on_broadcast)

    def close(self) -> None:
        self.jobs.shutdown()
        if self.broadcast is not None:
            self.broadcast.stop()
            self.broadcast = None
        for part in (self.cache, self.limiter):
            closer = getattr(part, "close", None)
            if closer is not None:
                closer()
        if self._owns_store and self.store is not None:
            self.store.close()

    # ---- the engine ---------------------------------------------------------------------------
    @property
    def live(self) -> LiveEngine:
        live = self._slot
        if live is None:
            reason = self.startup_error or "the engine is still loading"
            raise UnavailableError(f"no engine loaded: {reason}")
        return live

    @property
    def engine(self) -> Engine:
        return self.live.engine

    @property
    def loaded(self) -> bool:
        return self._slot is not None

    def install(self, engine: Engine, notes: list[str], built_clock: int) -> None:
        """Serve ``engine`` from now on (one reference swap)."""
        self._slot = LiveEngine(engine, built_clock, list(notes))
        info = engine.model_info
        self.metrics.set_model(info.name, info.version, info.registered_name)

    def reload(self) -> tuple[ModelInfo | None, LiveEngine]:
        """Build a new engine from the registry and the store, then swap it in."""
        if self.store is None:
            raise UnavailableError("no store connected")
        with self._reload_lock:
            previous = self._slot.engine.model_info if self._slot is not None else None
            clock = self.cache_clock()
            with self._change_lock:
                self._pending = []
            try:
                engine, report = load_engine(self.settings, self.store)
                for name, ref in list(self.slot_refs.items()):
                    self._add_slot(engine, name, ref, report.notes)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                with self._change_lock:
                    self._pending = None
                raise
            with self._change_lock:
                for change in self._pending or []:
                    change(engine)
                self._pending = None
                self.install(engine, report.notes, clock)
            settle_heap()
            self.startup_error = None
            self.metrics.reloads.labels("succeeded").inc()
            return previous, self.live

    def _add_slot(self, engine: Engine, name: str, ref: str, notes: list[str]) -> None:
        """Load one extra slot into ``engine``; a missing model is a note, not a failure."""
        if name == engine.primary:
            return
        try:
            model, info = load_slot_model(self.settings, ref, self.store, engine.catalogue.ids)
        except NotFoundError as exc:
            notes.append(f"slot {name!r} not loaded: {exc}")
            return
        engine.set_slot(name, model, info, vector_backend(self.settings))

    def load_slot(self, name: str, ref: str | None = None) -> ModelInfo:
        """Serve the model ``ref`` names (default: the alias ``name``) from slot ``name``.

        Only that slot changes: the others, and the primary, keep serving throughout. The
        primary slot is the serving alias and reloads with the whole engine (``reload``).
        """
        ref = ref or self.slot_refs.get(name) or name
        if name == self.engine.primary:
            self.reload()
            return self.engine.slot_info(name)
        with self._reload_lock:
            try:
                engine = self.engine
                model, info = load_slot_model(self.settings, ref, self.store, engine.catalogue.ids)
                engine.set_slot(name, model, info, vector_backend(self.settings))
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            self.slot_refs[name] = ref
            self.metrics.reloads.labels("succeeded").inc()
            return info

    def unload_slot(self, name: str) -> None:
        """Stop serving an extra slot (NotFoundError when it is not loaded)."""
        with self._reload_lock:
            if not self.engine.has_slot(name):
                raise NotFoundError(f"no model slot {name!r} is loaded")
            if name == self.engine.primary:
                raise ConfigError(f"the primary slot {name!r} cannot be unloaded")
            self.engine.drop_slot(name)
            self.slot_refs.pop(name, None)

    def slots(self) -> list[dict[str, Any]]:
        """Every loaded slot: name, the model it serves, its reference, whether primary."""
        engine = self.engine
        return [
            {
                "name": name,
                "model": info.as_dict(),
                "ref": self.settings.serving_alias
                if name == engine.primary
                else self.slot_refs.get(name, name),
                "primary": name == engine.primary,
            }
            for name, info in engine.slots.items()
        ]

    def apply_change(self, change: Change) -> None:
        """Apply a catalogue/user change to the current engine and to one being built."""
        with self._change_lock:
            change(self.engine)
            if self._pending is not None:
                self._pending.append(change)

    # ---- readiness ----------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, list[str]]:
        """``(ready, reasons)``: ready when a model is loaded and the store answers."""
        reasons: list[str] = []
        if self._slot is None:
            reasons.append(self.startup_error or "the engine is still loading")
        elif self._slot.engine.model is None:
            notes = [n for n in self._slot.notes if n.startswith("no model")]
            reasons.extend(notes or ["no model loaded: serving popularity"])
        if self.store is None:
            reasons.append("no store connected")
        else:
            try:
                self.store.ping()
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                reasons.append(f"store unreachable: {type(exc).__name__}: {exc}")
        return not reasons, reasons

    # ---- helpers --------------------------------------------------------------------------------
    def cache_clock(self) -> int:
        """The cache's change counter, 0 when the cache cannot be reached."""
        try:
            return self.cache.clock()
        except Exception:  # noqa: BLE001 - start serving; generations resync when it is back
            log.warning("cache unreachable: starting without its change clock", exc_info=True)
            return 0

    def principal(self, credential: str) -> Principal | None:
        """The caller a presented API key or (when a JWKS is configured) JWT names, or None.

        The one check the API and the dashboard both use."""
        if self.jwt is not None and looks_like_jwt(credential):
            return self.jwt.principal(credential)
        return self.verifier.principal(credential)

    def _verify_key(self, key: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        return self.store.verify_api_key(key)

    def _on_broadcast(self, message: dict[str, Any]) -> None:
        if self.on_message is not None:
            self.on_message(self, message)


def settle_heap() -> None:
    """Collect what the previous engine left, then exempt everything alive from collection.

    A loaded engine holds hundreds of thousands of tracked objects (per-user histories, id
    maps) that live until the next reload. Left to the collector, every full collection walks
    them all: on a 62K-item, 162K-user engine a pause of about 0.23 s in the middle of
    serving, which sets the tail latency. Frozen (``gc.freeze``), they are never walked.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _release_free_heap()


def _release_free_heap() -> None:
    """Hand the heap a load freed back to the OS (glibc keeps it otherwise: ~30 MiB a worker
    after a 25M-event load)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
