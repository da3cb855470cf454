"""What an experiment is: its arms, who it reaches, what it measures — validated once.

Every way of creating an experiment (``POST /v1/experiments``, ``recstack experiments create``,
a TOML or JSON file) goes through ``Experiment.from_input``, so a bad definition is refused
with one ``ConfigError`` naming the field and the reason, before anything is stored.

Arm weights must be positive and sum to 1 (within 1e-6): a sum of 0.9 is far more often a typo
than an intent, so it is refused rather than silently normalised. Which model each arm names
is checked against the registry by the caller that can see it (``workflows.experiments``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recstack.errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
WEIGHT_TOLERANCE = 1e-6
POPULARITY = "popularity"
TWO_STAGE = "two_stage"
METRICS = ("ctr", "conversion", "value")
MODEL_REF = re.compile(r"^([A-Za-z0-9_.-]+:)?[A-Za-z0-9_.-]+$")

Status = Literal["draft", "running", "stopped"]
Metric = Literal["ctr", "conversion", "value"]


class Arm(BaseModel):
    """One variant: a name, the model that serves it and its share of the experiment's users.

    ``model`` is ``popularity``, ``two_stage``, a registry alias (``champion``,
    ``challenger``), a version (``7``) or ``NAME:VERSION`` / ``NAME:ALIAS``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Arm name, unique in the experiment.")
    model: str = Field(
        min_length=1,
        max_length=255,
        pattern=MODEL_REF.pattern,
        description="What serves the arm: popularity, two_stage, an alias, a version or "
        "NAME:VERSION.",
    )
    weight: float = Field(gt=0, le=1, description="Share of the experiment's users.")


class Exploration(BaseModel):
    """How a served list departs from the arm's ranking so other policies can be evaluated
    off-line: ``epsilon`` swaps in a uniformly random candidate of the top ``top_n`` with
    probability ``epsilon`` per position; ``plackett_luce`` samples the list from the top
    ``top_n`` with probabilities softmax(score / temperature). Both log propensities."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "epsilon", "plackett_luce"] = "none"
    epsilon: float = Field(default=0.1, ge=0, le=1)
    top_n: int = Field(default=50, ge=1, le=1000)
    temperature: float = Field(default=1.0, gt=0)


class ExperimentSpec(BaseModel):
    """What a user defines: the body of ``POST /v1/experiments``."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=NAME_PATTERN, description="Unique key, used in URLs.")
    description: str = Field(default="", max_length=2000)
    start: datetime | None = Field(default=None, description="Serve from this time on (UTC).")
    end: datetime | None = Field(default=None, description="Stop serving at this time (UTC).")
    traffic: float = Field(default=1.0, gt=0, le=1, description="Share of all users reached.")
    arms: list[Arm] = Field(min_length=2, max_length=20)
    salt: str = Field(default="", max_length=255, description="Hash salt; default: the key.")
    namespace: str = Field(default="default", pattern=NAME_PATTERN)
    primary_metric: Metric = "ctr"
    guardrails: list[Metric] = Field(default_factory=list)
    mode: Literal["ab", "interleave"] = "ab"
    exploration: Exploration = Field(default_factory=Exploration)
    click_events: list[str] = Field(
        default_factory=lambda: ["click", "view"],
        description="Event types that count as a click on a shown item (CTR).",
    )
    conversion_events: list[str] = Field(
        default_factory=lambda: ["purchase", "complete"],
        description="Event types that count as a conversion.",
    )
    forced: dict[str, str] = Field(
        default_factory=dict, description="QA: user id -> arm, served whatever the hash says."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique; got {names}")
        total = math.fsum(arm.weight for arm in self.arms)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"arm weights must sum to 1; they sum to {total:g}")
        if self.mode == "interleave" and len(self.arms) != 2:
            raise ValueError("interleave mode compares exactly two arms")
        for user, arm in self.forced.items():
            if arm not in names:
                raise ValueError(f"forced user {user!r} names unknown arm {arm!r}")
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        if not self.salt:
            self.salt = self.key
        return self


class Experiment(ExperimentSpec):
    """An experiment as stored: the definition plus its lifecycle (status, and the bucket range
    it holds in its namespace once started)."""

    status: Status = "draft"
    bucket_start: int | None = Field(default=None, ge=0, le=10_000)
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @classmethod
    def from_input(cls, data: Any) -> Experiment:
        """A new (draft) experiment from user input; ``ConfigError`` naming every problem."""
        if not isinstance(data, dict):
            raise ConfigError("an experiment must be a JSON object")
        for managed in ("status", "bucket_start", "started_at", "stopped_at"):
            if managed in data:
                raise ConfigError(f"{managed!r} is set by start/stop, not at creation")
        return validated(data)

    @property
    def weights(self) -> list[float]:
        return [arm.weight for arm in self.arms]

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.arms]

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ConfigError(f"experiment {self.key!r} has no arm {name!r}")

    @property
    def buckets(self) -> int:
        """How many of the namespace's 10,000 buckets the traffic share covers."""
        return max(1, round(self.traffic * 10_000))

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def validated(data: dict[str, Any]) -> Experiment:
    """``Experiment(**data)`` with pydantic's errors turned into one ``ConfigError``."""
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "experiment"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise ConfigError("invalid experiment: " + "; ".join(problems)) from None
