"""Loading a catalogue through the API: ``POST /v1/items/batch`` against one ``PUT`` per item.

Each run starts from a fresh in-process app (TestClient, SQLite store, auth on) whose store
holds the MovieLens latest-small ratings but no movie metadata, serving popularity; it then
upserts every movie (title, text, genres and year as attributes) either in batches of
``--batch`` items or one ``PUT /v1/items/{id}`` at a time, and checks the engine serves the
same catalogue both ways. Per item, a PUT is a transaction and a new catalogue (an O(n_items)
copy); a batch is one transaction and one catalogue build for up to 10,000 items.

    .venv/bin/python benchmarks/items_batch.py [--data ../shared/datasets/ml-latest-small]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from recstack.data.loaders import LoadedData, load_movielens
from recstack.serving.api.app import create_app
from recstack.serving.engine.core import Engine
from recstack.serving.engine.request import MAX_BATCH_ITEMS
from recstack.settings import Settings
from recstack.store import Store

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-latest-small"


def fresh_app(home: Path, ratings: LoadedData) -> tuple[TestClient, Store, dict[str, str]]:
    """An app over a new store holding ``ratings`` only (items without metadata)."""
    settings = Settings(home=home, rate_limit_write_per_minute=10_000_000)
    settings.ensure_home()
    store = Store.from_settings(settings)
    store.ingest(ratings)
    engine = Engine.from_dataset(store.snapshot(settings.weighting()), None)
    key = store.create_api_key("write", "bench")[0]
    client = TestClient(create_app(settings, engine, store))
    return client, store, {"Authorization": f"Bearer {key}"}


def upsert(
    records: list[dict[str, Any]], home: Path, ratings: LoadedData, batch: int
) -> tuple[float, int, list[Any]]:
    """Seconds and requests to upsert ``records`` (``batch`` 0: one PUT each), and the
    engine's titles afterwards."""
    client, store, headers = fresh_app(home, ratings)
    try:
        with client:
            start = time.perf_counter()
            requests = 0
            if batch:
                for first in range(0, len(records), batch):
                    body = {"items": records[first : first + batch]}
                    response = client.post("/v1/items/batch", json=body, headers=headers)
                    assert response.status_code == 200, response.text[:300]
                    requests += 1
            else:
                for record in records:
                    fields = {k: v for k, v in record.items() if k != "item_id"}
                    response = client.put(
                        f"/v1/items/{record['item_id']}", json=fields, headers=headers
                    )
                    assert response.status_code == 200, response.text[:300]
                    requests += 1
            seconds = time.perf_counter() - start
            catalogue = client.app.state.recstack.engine.catalogue
            titles = [catalogue.title(catalogue.position(r["item_id"])) for r in records]
    finally:
        store.close()
    return seconds, requests, titles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MovieLens directory")
    parser.add_argument("--batch", type=int, default=MAX_BATCH_ITEMS, help="items per request")
    args = parser.parse_args()
    data = load_movielens(args.data)
    ratings = LoadedData(interactions=data.interactions, source="ratings only")
    records = [
        {
            "item_id": str(row["item_id"]),
            "title": row["title"],
            "text": row["text"],
            "attributes": dict(row["attributes"]),
            "active": bool(row["active"]),
        }
        for row in data.items.to_dict("records")
    ]
    print(f"{len(records):,} movies over {len(data.interactions):,} ratings ({args.data.name})")
    with tempfile.TemporaryDirectory() as tmp:
        batched = upsert(records, Path(tmp) / "batch", ratings, args.batch)
        single = upsert(records, Path(tmp) / "single", ratings, 0)
    assert batched[2] == single[2] == [r["title"] for r in records]
    for name, (seconds, requests, _) in (("batch", batched), ("one PUT each", single)):
        print(
            f"{name:>13}: {requests:>6,} requests  {seconds:8.2f} s  "
            f"{len(records) / seconds:9,.0f} items/s"
        )
    print(f"batch is {single[0] / batched[0]:.0f}x faster")


if __name__ == "__main__":
    main()
