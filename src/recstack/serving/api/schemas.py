"""Typed request and response bodies of the HTTP API (they become the OpenAPI schema)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recstack.data.validation import MAX_ID_LENGTH
from recstack.serving.engine.request import MAX_BATCH_EVENTS, MAX_BATCH_ITEMS, MAX_K
from recstack.serving.engine.results import ScoredItem

__all__ = ["MAX_BATCH_EVENTS", "MAX_BATCH_ITEMS", "MAX_ID_LENGTH", "MAX_K"]

# The store refuses NUL in ids (data.validation) and PostgreSQL in any text or JSON string, so
# the schema says so rather than letting a valid-looking request fail at the database.
NO_NUL = r"^[^\x00]*$"
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_NUL)
]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Scalar = (
    Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)] | bool | int | FiniteFloat
)
AttributeValue = Scalar | list[Scalar] | None


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`.")
    message: str = Field(description="What went wrong, fit to show a person.")
    request_id: str = Field(description="The request's id (also in the X-Request-ID header).")


class ErrorBody(BaseModel):
    """The one error shape every non-2xx response has."""

    error: ErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "Missing, unknown or revoked API key.",
    403: "The key's scope is too small for this route or option.",
    404: "Not found.",
    413: "Body or batch over its documented size limit.",
    422: "Invalid request; the message names the field and the reason.",
    429: "Over the key's rate limit; retry after `Retry-After` seconds.",
    503: "Not available yet (no engine loaded, no store connected, or no content model).",
}


def error_responses(
    *statuses: int, reasons: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error body for ``statuses``.

    ``reasons`` replaces the generic description of a status with the route's own, for the
    answers a schema-valid request can still get because of the data (an event naming an item
    the catalogue lacks, a filter naming an attribute no item has).
    """
    reasons = reasons or {}
    return {
        status: {
            "model": ErrorBody,
            "description": reasons.get(status, ERROR_DESCRIPTIONS.get(status, "Error")),
        }
        for status in statuses
    }


# ---- recommendations ----------------------------------------------------------------------------
STRICT = ConfigDict(extra="forbid", strict=True)  # JSON bodies: no "5" for 5, no 0 for false


class Explanation(BaseModel):
    item_id: str
    title: str | None = None
    weight: float = Field(description="How much this history item contributed.")


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    title: str | None = None
    explanation: list[Explanation] | None = None


def scored_items(items: Iterable[ScoredItem]) -> list[dict[str, Any]]:
    """The engine's scored items as ``RecommendedItem`` bodies (lists without explanations)."""
    return [{"item_id": i.item_id, "score": i.score, "title": i.title} for i in items]


class ModelRef(BaseModel):
    name: str = Field(description="Model family (e.g. `als`), or `popularity` when none is loaded.")
    version: int | None = Field(None, description="Registry version; null for the fallback.")
    registered_name: str | None = Field(None, description="Registered model name.")


class ExperimentTag(BaseModel):
    key: str = Field(description="The experiment serving this list.")
    arm: str = Field(description="Its arm (`interleaved` when both arms filled the list).")


def _recommendation_id() -> Any:
    return Field(None, description="Id of this served list; send it with events that follow it.")


def _experiment_tag() -> Any:
    return Field(None, description="The experiment and arm, or null outside experiments.")


class RecommendationResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model: ModelRef
    request_id: str
    cold_start: bool = Field(description="True when the trained model does not know this user.")
    recommendation_id: str | None = _recommendation_id()
    experiment: ExperimentTag | None = _experiment_tag()


class SimilarResponse(BaseModel):
    item_id: str
    items: list[RecommendedItem]
    model: ModelRef
    source: Literal["model", "content", "popularity"] = Field(
        description="What produced the list: the served model, the content model, or popularity."
    )
    request_id: str
    recommendation_id: str | None = _recommendation_id()
    experiment: ExperimentTag | None = _experiment_tag()


class SearchResponse(BaseModel):
    query: str
    user_id: str | None = None
    items: list[RecommendedItem]
    model: ModelRef
    personalised: bool
    request_id: str
    recommendation_id: str | None = _recommendation_id()
    experiment: ExperimentTag | None = _experiment_tag()


class PopularResponse(BaseModel):
    items: list[RecommendedItem]
    request_id: str


# ---- events -------------------------------------------------------------------------------------
class EventIn(BaseModel):
    """One interaction. ``timestamp`` is epoch seconds or ISO 8601 (UTC if no zone)."""

    model_config = STRICT

    event_id: Identifier | None = Field(
        None, description="Idempotency key; a fresh UUID if absent."
    )
    user_id: Identifier
    item_id: Identifier
    event_type: Annotated[
        str, StringConstraints(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f]*$")
    ] = Field("view", description="A short name without control characters.")
    value: FiniteFloat | None = Field(None, description="E.g. a rating; weighs valued event types.")
    timestamp: datetime | None = Field(
        None, strict=False, description="Epoch seconds or ISO 8601; default now."
    )
    context: dict[str, Any] | None = None
    recommendation_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = (
        Field(
            None,
            description="The served list this event follows (`recommendation_id` of a "
            "response); an id never served is refused (422). Without it the event is credited "
            "to the user's latest list showing the item within the attribution window.",
        )
    )


class EventBatch(BaseModel):
    model_config = STRICT

    events: list[EventIn] = Field(
        description=f"Up to {MAX_BATCH_EVENTS} events; larger batches get 413."
    )


class EventsResponse(BaseModel):
    accepted: int = Field(description="Events in the request.")
    inserted: int = Field(description="Events newly stored.")
    duplicates: int = Field(description="Events whose event_id was already stored (ignored).")


# ---- items and users ----------------------------------------------------------------------------
def _names_of_every_key(schema: dict[str, Any]) -> None:
    """Put a key pattern under ``propertyNames``: pydantic writes it as ``patternProperties``,
    which leaves keys that do not match it unconstrained instead of refused."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        ((pattern, values),) = patterns.items()
        schema["additionalProperties"] = values
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}


class ItemIn(BaseModel):
    model_config = STRICT

    title: Annotated[str, StringConstraints(max_length=10_000, pattern=NO_NUL)] | None = None
    text: Annotated[str, StringConstraints(max_length=100_000, pattern=NO_NUL)] | None = None
    attributes: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NO_NUL)],
        AttributeValue,
    ] = Field(default_factory=dict, json_schema_extra=_names_of_every_key)
    active: bool = True


class BatchItemIn(ItemIn):
    """One item of a batch upsert: ``ItemIn`` with its id."""

    item_id: Identifier


class ItemBatch(BaseModel):
    model_config = STRICT

    items: list[BatchItemIn] = Field(
        description=f"Up to {MAX_BATCH_ITEMS} items, stored all or none; larger batches get "
        "413. Entries apply in order, as that many PUTs would: fields left out keep their "
        "stored values."
    )


class ItemBatchResponse(BaseModel):
    upserted: int = Field(description="Distinct items stored (created or updated).")
    item_ids: list[str] = Field(description="Their ids, in request order.")


class ItemOut(BaseModel):
    item_id: str
    title: str | None = None
    text: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


class HistoryEvent(BaseModel):
    event_id: str
    item_id: str
    event_type: str
    value: float | None = None
    timestamp: int


class UserOut(BaseModel):
    user_id: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    n_events: int
    known_to_model: bool
    history: list[HistoryEvent]


class UserDeleted(BaseModel):
    user_id: str
    events_deleted: int


# ---- admin and health ---------------------------------------------------------------------------
class TrainRequest(BaseModel):
    model_config = STRICT

    model: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="Model family: popularity, itemknn, ease, als, bpr, two_tower or content."
    )
    params: dict[str, Any] | None = None
    promote: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")] | None = (
        Field(None, description="Alias to give the new version, e.g. `champion`.")
    )
    evaluate: bool = Field(True, description="Hold out a split to record metrics first.")
    registered_name: Identifier | None = Field(
        None, description="Register under this name instead of the server's model name."
    )


JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobOut(BaseModel):
    id: str
    kind: str
    status: JobStatus
    request: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class ReloadResponse(BaseModel):
    model: ModelRef
    previous: ModelRef
    seconds: float
    items: int
    users: int


class VersionOut(BaseModel):
    name: str
    version: int
    run_id: str | None = None
    aliases: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: str | None = None
    loaded: bool = False


class SlotIn(BaseModel):
    model_config = STRICT

    ref: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="An alias (`challenger`), a version (`7`), `NAME:VERSION`, `popularity` or "
        "`precomputed:SET` (lists stored by `recstack spark score --into-store`); default: the "
        "slot's name as an alias.",
    )


class SlotOut(BaseModel):
    name: str
    model: ModelRef
    ref: str = Field(description="What the slot was loaded from (alias, version or NAME:REF).")
    primary: bool = Field(description="The serving alias's slot, used when none is asked for.")


class ModelsResponse(BaseModel):
    loaded: ModelRef
    content: ModelRef | None = None
    slots: list[SlotOut] = Field(description="The model slots this worker serves.")
    versions: list[VersionOut]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    model: ModelRef | None = None
    reasons: list[str] = Field(default_factory=list)
