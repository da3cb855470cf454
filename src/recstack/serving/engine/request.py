"""What a recommendation request asks for, once parsed: the engine's view, free of HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_K = 1000  # items per list
MAX_EXCLUDE = 1000  # ids in one request's exclude list
MAX_FILTER_LENGTH = 10_000  # characters of a filter's JSON text
MAX_BATCH_EVENTS = 10_000  # events per POST /v1/events
MAX_BATCH_ITEMS = 10_000  # items per POST /v1/items/batch


@dataclass(frozen=True, slots=True)
class RecommendationRequest:
    """The options of one recommendation list (GET query and POST body parse into this)."""

    k: int = 10
    exclude_seen: bool = True
    exclude: tuple[str, ...] = ()
    filter: dict[str, Any] | None = None
    explain: bool = False
    slot: str | None = None
