"""The typed, flat config of ``two_stage`` (retriever parameters travel as one JSON string)."""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from recstack.models.config import ModelConfig
from recstack.models.names import MODELS


class TwoStageConfig(ModelConfig):
    """Retrievers, candidate depth, the reranker's training protocol and its booster."""

    retrievers: str = Field(
        "ease,als,itemknn", min_length=1, description="Comma-separated retriever model names."
    )
    retriever_params: str = Field(
        "{}",
        description='JSON object of each retriever\'s parameters, e.g. {"als": {"factors": 64}}.',
    )
    candidates: int = Field(100, ge=1, le=2000, description="Items each retriever proposes.")
    holdout: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share of each user's training events held out as labels."
    )
    split: str = Field(
        "random",
        pattern="^(random|temporal|global)$",
        description="Label holdout: 'random' (per user), 'temporal' (each user's latest share) "
        "or 'global' (everything after one time cut).",
    )
    folds: int = Field(2, ge=1, le=10, description="Out-of-fold rounds (random split seeds).")
    bags: int | None = Field(
        None,
        ge=1,
        le=20,
        description="Boosters, each trained on its own out-of-fold lists (other fold seeds), "
        "averaged into one model: averaging steadies a reranker learnt from few lists. None: "
        "auto_bags, 3 below 10,000 training lists per booster, else 1 (bags multiply training "
        "time and the trees each request walks).",
    )
    max_users: int = Field(
        50_000,
        ge=0,
        description="Users whose lists train the reranker per fold: a random sample of this many "
        "when more have held-out events (0: all). Bounds the reranker's training rows on large "
        "data; the retrievers still fit on every user.",
    )
    rounds: int = Field(150, ge=1, le=10_000, description="Boosting rounds.")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0, description="Boosting learning rate.")
    num_leaves: int = Field(15, ge=2, le=4096, description="Leaves per tree.")
    min_data_in_leaf: int = Field(100, ge=1, description="Minimum candidates per leaf.")
    objective: str = Field(
        "binary",
        pattern="^(lambdarank|rank_xendcg|binary)$",
        description="Booster objective: 'lambdarank' or 'rank_xendcg' (listwise) or 'binary' "
        "(pointwise).",
    )
    standardised_scores: bool = Field(
        True,
        description="Give the reranker each retriever's per-user standardised score of every "
        "candidate (also of candidates that retriever did not propose).",
    )
    early_stopping: int = Field(
        0,
        ge=0,
        description="Stop boosting after this many rounds without gain on validation users' "
        "lists (0: off, train all rounds).",
    )
    validation: float = Field(
        0.15, gt=0.0, lt=1.0, description="Share of training lists' users kept for validation."
    )
    anchor: bool = Field(
        False, description="Boost from the best retriever's ranking (learn corrections to it)."
    )
    monotone: bool = Field(
        True, description="Constrain retriever rank/score features to their known direction."
    )
    half_life_days: float = Field(30.0, gt=0.0, description="Half-life of recent popularity.")
    context_features: bool = Field(
        False, description="Learn hour and weekday (from the time of the held-out events)."
    )
    context_keys: str = Field(
        "", description="Comma-separated request context keys used as categorical features."
    )
    seed: int = Field(0, ge=0, description="Seed of the label splits and the booster.")
    diversity: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="MMR weight on attribute diversity of the top list (0: off).",
    )

    @field_validator("retrievers")
    @classmethod
    def _known_retrievers(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        bad = [n for n in names if n not in MODELS or n == "two_stage"]
        if not names or bad or len(set(names)) != len(names):
            raise ValueError(
                f"retrievers must be distinct catalogue models other than two_stage "
                f"(known: {', '.join(k for k in MODELS if k != 'two_stage')})"
            )
        return ",".join(names)

    @field_validator("retriever_params")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
            raise ValueError('must be a JSON object of objects, e.g. {"als": {"factors": 64}}')
        return value
