"""The store snapshot every workflow starts from.

Training, tuning and evaluation read the same weighted snapshot, so a model is judged on exactly
the data it would be trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from recstack.data.dataset import Dataset
from recstack.data.weights import EventWeighting
from recstack.errors import DataError
from recstack.settings import Settings

MIN_INTERACTIONS = 2


@dataclass(frozen=True)
class StoreSnapshot:
    """A snapshot and where it was read: every event up to ``mark["max_event_id"]`` (the
    store's ``change_mark`` taken first), weighted by ``weighting``, from ``since`` on. What a
    serving image of the trained model needs to be written from this data instead of read
    from the store again."""

    dataset: Dataset
    mark: dict[str, int]
    weighting: EventWeighting
    since: int | None


def read_snapshot(settings: Settings, *, progress: bool = False) -> StoreSnapshot:
    """A snapshot of the store, weighted by ``settings.event_weights``, up to a mark.

    With ``settings.history_days`` set, only that many days of history (up to now) are read.
    Raises DataError when the store holds too little to train on.
    """
    from recstack.store import Store

    since = settings.history_since()
    weighting = settings.weighting()
    store = Store.from_settings(settings)
    try:
        mark = store.change_mark()
        dataset = store.snapshot(
            weighting, since=since, upto_event_id=mark["max_event_id"], progress=progress
        )
    finally:
        store.close()
    if dataset.n_interactions < MIN_INTERACTIONS:
        raise DataError(
            f"the store at {settings.store_url} holds {dataset.n_interactions} interaction(s); "
            "ingest data first (recstack ingest ...)"
        )
    return StoreSnapshot(dataset, mark, weighting, since)


def load_dataset(settings: Settings, *, progress: bool = False) -> Dataset:
    """The dataset of ``read_snapshot``."""
    return read_snapshot(settings, progress=progress).dataset
