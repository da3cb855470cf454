"""Two-tower (and content) quality and training time on MovieLens 100K.

Protocol: each user's ratings are split at random 75/25; every test rating is relevant; items a
user rated in train are excluded; NDCG@10 and recall@10 are averaged over users with test
items. Reported for known users (learned user embedding) and for the same users folded in as
strangers (history only).

    .venv/bin/python benchmarks/two_tower_ml100k.py [--users N] [--epochs E] [--no-text]
        [--content] [--param key=json_value ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.models.base import Recommender
from recstack.models.content import ContentRecommender
from recstack.models.two_tower import TwoTowerRecommender
from recstack.models.two_tower.train import ndcg_rows

ML100K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k"
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
K = 10


def load_ml100k(root: Path, max_users: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings (weight = stars) and items (title + genre list) of MovieLens 100K."""
    ratings = pd.read_csv(
        root / "u.data", sep="\t", names=["user_id", "item_id", "weight", "timestamp"]
    )
    if max_users:
        ratings = ratings[ratings["user_id"] <= max_users]
    cols = ["item_id", "title", "date", "video", "url", *GENRES]
    raw = pd.read_csv(root / "u.item", sep="|", names=cols, encoding="latin-1")
    flags = raw[GENRES].to_numpy().astype(bool)
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"].astype(str),
            "title": raw["title"],
            "text": None,
            "attributes": [{"genres": [g for g, f in zip(GENRES, row, strict=True) if f]} for row in flags],
            "active": True,
        }
    )  # fmt: skip
    ratings = ratings.assign(
        user_id=ratings["user_id"].astype(str), item_id=ratings["item_id"].astype(str)
    )
    return ratings, items


def random_split(
    ratings: pd.DataFrame, test_share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user random split: ``test_share`` of each user's ratings go to test."""
    shuffled = ratings.sample(frac=1.0, random_state=seed)
    rank = shuffled.groupby("user_id").cumcount()
    size = shuffled.groupby("user_id")["user_id"].transform("size")
    is_test = rank < (size * test_share).round()
    return shuffled[~is_test], shuffled[is_test]


def evaluate(model: Recommender, train: Dataset, truth: sp.csr_matrix, users: np.ndarray) -> str:
    """NDCG@10 and recall@10 of ``model`` recommending to every train user."""
    idx, _ = model.recommend(train.matrix, K, users=users)
    ranks = np.full((train.n_users, train.n_items), -np.inf, dtype=np.float32)
    np.put_along_axis(ranks, np.maximum(idx, 0), -np.arange(K, dtype=np.float32)[None, :], axis=1)
    ndcg = float(np.mean(ndcg_rows(ranks, truth, K)))
    counts = np.diff(truth.indptr)
    hits = np.asarray(truth[np.arange(train.n_users)[:, None], idx].todense()) > 0
    recall = float(np.mean(hits[counts > 0].sum(axis=1) / np.minimum(counts[counts > 0], K)))
    return f"NDCG@10 {ndcg:.4f}  recall@10 {recall:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ML100K)
    parser.add_argument("--users", type=int, default=None, help="only the first N users")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--no-text", action="store_true", help="two-tower without text")
    parser.add_argument("--content", action="store_true", help="also the content model")
    parser.add_argument("--seed", type=int, default=0, help="split and model seed")
    parser.add_argument("--param", action="append", default=[], help="two-tower key=json")
    args = parser.parse_args()

    ratings, items = load_ml100k(args.data, args.users)
    train_frame, test_frame = random_split(ratings, 0.25, args.seed)
    train = Dataset.from_frame(train_frame, items=items)
    test_users = train.users.indices(test_frame["user_id"])
    test_items = train.items.indices(test_frame["item_id"])
    keep = (test_users >= 0) & (test_items >= 0)
    truth = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (test_users[keep], test_items[keep])),
        shape=(train.n_users, train.n_items),
    )
    print(f"train {train.n_interactions} ratings, {train.n_users} users, {train.n_items} items;")
    print(f"test {keep.sum()} ratings")
    known, strangers = np.arange(train.n_users), np.full(train.n_users, -1)

    overrides = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    params = {"epochs": args.epochs, "use_text": not args.no_text, "random_state": args.seed}
    model = TwoTowerRecommender(**{**params, **overrides})
    start = time.perf_counter()
    model.fit(train, progress=True)
    seconds = time.perf_counter() - start
    print(f"two_tower {model.params}")
    print(f"  known users   {evaluate(model, train, truth, known)}")
    print(f"  folded in     {evaluate(model, train, truth, strangers)}")
    print(f"  train seconds {seconds:.1f}, epochs run {len(model.training_log)}, metrics")
    print(f"  {model.meta.metrics}")
    for entry in model.training_log:
        print(
            f"    epoch {int(entry['epoch'])}: loss {entry['loss']:.4f} "
            f"val ndcg {entry.get('val_ndcg', float('nan')):.4f} ({entry['seconds']:.1f}s)"
        )
    if args.content:
        start = time.perf_counter()
        content = ContentRecommender().fit(train, progress=True)
        seconds = time.perf_counter() - start
        print(f"content {evaluate(content, train, truth, known)}  ({seconds:.1f}s)")


if __name__ == "__main__":
    main()
