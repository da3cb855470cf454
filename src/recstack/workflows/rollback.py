"""Rollback (``recstack rollback``, ``POST /v1/admin/rollback``): the champion goes back to the
version the gate replaced, in a few registry calls, and running servers are told to reload."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from recstack.errors import NotFoundError
from recstack.registry.mlflow_registry import ModelRegistry
from recstack.settings import Settings
from recstack.store import monitoring as queries
from recstack.workflows.announce import announce_reload
from recstack.workflows.monitor import champion_of, open_store
from recstack.workflows.retrain import Notify, RetrainDecision

if TYPE_CHECKING:
    from recstack.store import Store


def run_rollback(
    settings: Settings,
    *,
    store: Store | None = None,
    registry: ModelRegistry | None = None,
    notify: Notify | None = None,
) -> RetrainDecision:
    """Point ``champion`` back at the ``previous`` version (and ``previous`` at the version
    that was champion, so a second rollback undoes the first), record it, tell servers.

    Raises NotFoundError when there is no ``previous`` version to go back to.
    """
    started = time.perf_counter()
    registry = registry or ModelRegistry(settings)
    name = settings.model_name
    if not registry.exists():
        champion_of(registry, name)  # raises the NotFoundError that says what to do
    aliases = registry.aliases(name)  # one registry read: rollback must be quick
    if "champion" not in aliases:
        raise NotFoundError(f"model {name!r} has no champion to roll back")
    if "previous" not in aliases:
        raise NotFoundError(
            f"model {name!r} has no 'previous' version to roll back to (no promotion by the "
            "gate yet)"
        )
    current, previous = aliases["champion"], aliases["previous"]
    if previous == current:
        raise NotFoundError(f"'previous' and 'champion' both point at version {current}")
    registry.set_alias(name, "champion", previous)
    registry.set_alias(name, "previous", current)
    decision = RetrainDecision(
        id=uuid.uuid4().hex,
        created_at=queries.utc_now(),
        action="rollback",
        model_name=name,
        promoted=True,
        reason=f"rollback: champion moved from version {current} back to {previous}",
        champion={"version": previous},
        challenger={"version": current},
        trigger="manual",
        aliases={"champion": previous, "previous": current},
    )
    decision.notified = (notify or (lambda: announce_reload(settings)))()
    decision.seconds = round(time.perf_counter() - started, 3)
    with open_store(settings, store) as st:
        queries.save_decision(st.engine, decision.to_dict())
    return decision
