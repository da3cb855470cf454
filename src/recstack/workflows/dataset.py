"""The store snapshot every workflow starts from.

Training, tuning and evaluation read the same weighted snapshot, so a model is judged on exactly
the data it would be trained on.
"""

from __future__ import annotations

from recstack.data.dataset import Dataset
from recstack.errors import DataError
from recstack.settings import Settings

MIN_INTERACTIONS = 2


def load_dataset(settings: Settings, *, progress: bool = False) -> Dataset:
    """A snapshot of the store, weighted by ``settings.event_weights``.

    With ``settings.history_days`` set, only that many days of history (up to now) are read.
    Raises DataError when the store holds too little to train on.
    """
    from recstack.store import Store

    since = settings.history_since()
    store = Store.from_settings(settings)
    try:
        dataset = store.snapshot(settings.weighting(), since=since, progress=progress)
    finally:
        store.close()
    if dataset.n_interactions < MIN_INTERACTIONS:
        raise DataError(
            f"the store at {settings.store_url} holds {dataset.n_interactions} interaction(s); "
            "ingest data first (recstack ingest ...)"
        )
    return dataset
