"""What the engine answers with: the served model's identity and scored items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """What the engine serves: model family, registry version and registered name."""

    name: str
    version: int | None = None
    registered_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "registered_name": self.registered_name}


FALLBACK = ModelInfo("popularity")


@dataclass
class ScoredItem:
    """One recommended item with its title and, on request, why it was picked."""

    item_id: str
    score: float
    title: str | None = None
    explanation: list[dict[str, Any]] | None = None


@dataclass
class Recommendations:
    items: list[ScoredItem]
    cold_start: bool
    source: str = "model"
