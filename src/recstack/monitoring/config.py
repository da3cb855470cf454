"""Thresholds of the drift report and the promotion gate, typed and range-checked.

Defaults follow Evidently for drift (p <= 0.05 up to 1,000 reference rows, distance >= 0.1
above, dataset drift when half the signals drift) and a conservative gate (the challenger must
be strictly better on the primary metric and lose little on the guardrails). Out-of-range or
unknown fields raise ``ConfigError`` naming the field, so nothing runs on a bad threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recstack.errors import ConfigError

PRIMARY_METRICS = ("ndcg", "precision", "recall", "map", "mrr", "hit_rate")


class DriftConfig(BaseModel):
    """When a drift signal, and the dataset, count as drifted."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    p_value: float = Field(0.05, gt=0.0, lt=1.0, description="Test p-value at or below: drift.")
    distance: float = Field(
        0.1, gt=0.0, le=1.0, description="JS / normalised Wasserstein at or above: drift."
    )
    small_sample_rows: int = Field(
        1000, ge=1, description="Up to this many reference rows a test decides, above a distance."
    )
    new_items_share: float = Field(
        0.1, gt=0.0, le=1.0, description="Share of current events on unseen items: drift."
    )
    cold_users_share: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of current events by unseen users: drift."
    )
    coverage_change: float = Field(
        0.1, gt=0.0, le=1.0, description="Absolute change in served catalogue coverage: drift."
    )
    share: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of drifted signals at or above: dataset drift."
    )
    reference_days: float | None = Field(
        None, gt=0.0, description="Only the last days of the champion's training window."
    )
    current_days: float | None = Field(
        None, gt=0.0, description="Only the last days of events after the champion's window."
    )
    min_current_events: int = Field(1, ge=1, description="Fewer current events: an error.")


class GateConfig(BaseModel):
    """What a challenger must show to replace the champion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    primary_metric: Literal["ndcg", "precision", "recall", "map", "mrr", "hit_rate"] = "ndcg"
    k: int = Field(10, ge=1, le=1000, description="Cut-off of the ranking metrics.")
    margin: float = Field(
        0.0, ge=0.0, le=1.0, description="Absolute gain the challenger needs on the primary."
    )
    coverage_tolerance: float = Field(
        0.2, ge=0.0, le=1.0, description="Relative loss of catalogue coverage allowed."
    )
    precision_at_1_tolerance: float = Field(
        0.1, ge=0.0, le=1.0, description="Relative loss of P@1 allowed."
    )
    latency_tolerance: float = Field(
        1.0, ge=0.0, le=100.0, description="Relative growth of scoring latency allowed."
    )
    holdout_share: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Latest share of the events after the champion's window held out to judge.",
    )
    min_holdout_users: int = Field(5, ge=1, description="Fewer users to judge on: an error.")
    challenger: Literal["same", "auto"] = Field(
        "same",
        description="same: the champion's family and parameters; auto: the family and "
        "parameters workflows.auto picks on the holdout's training part.",
    )
    auto_budget_seconds: float = Field(
        60.0, gt=0.0, le=3600.0, description="Time the auto challenger may spend choosing."
    )
    on_pass: Literal["promote", "experiment"] = Field(
        "promote",
        description="promote: move the aliases; experiment: start an A/B test of champion "
        "against the challenger instead, and let its results decide.",
    )
    experiment_traffic: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of users in that A/B test (half per arm)."
    )


C = TypeVar("C", bound=BaseModel)


def parse_config(cls: type[C], values: C | Mapping[str, Any] | None) -> C:
    """``cls`` from a mapping (None: defaults); ``ConfigError`` naming each bad field.

    >>> parse_config(DriftConfig, {"share": 0.6}).share
    0.6
    >>> parse_config(DriftConfig, {"share": 2})
    Traceback (most recent call last):
    ...
    recstack.errors.ConfigError: invalid DriftConfig: share: Input should be less than or equal to 1
    """
    if isinstance(values, cls):
        return values
    try:
        return cls.model_validate(dict(values or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        fields = ", ".join(cls.model_fields)
        message = f"invalid {cls.__name__}: {problems}"
        if any(err["type"] == "extra_forbidden" for err in exc.errors()):
            message += f" (valid fields: {fields})"
        raise ConfigError(message) from None
