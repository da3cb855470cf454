"""Amazon Reviews 2023 JSONL: reviews as rate events, metadata as items, bad lines by number."""

from __future__ import annotations

import json

import pytest

from recstack.data.loaders import load_amazon
from recstack.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS
from recstack.errors import ConfigError, DataError

REVIEWS = [
    {
        "rating": 5.0,
        "title": "Great",
        "text": "Loved it",
        "images": [],
        "asin": "B01-red",
        "parent_asin": "B01",
        "user_id": "AE1",
        "timestamp": 1588687728923,
        "helpful_vote": 2,
        "verified_purchase": True,
    },
    {
        "rating": 2.0,
        "title": "Meh",
        "text": "",
        "images": [],
        "asin": "B02",
        "parent_asin": "B02",
        "user_id": "AE2",
        "timestamp": 1588687729000,
        "helpful_vote": 0,
        "verified_purchase": False,
    },
    {
        "rating": 4.0,
        "title": "Again",
        "text": "Second review",
        "images": [],
        "asin": "B01-blue",
        "parent_asin": "B01",
        "user_id": "AE2",
        "timestamp": 1588687730000,
        "helpful_vote": 1,
        "verified_purchase": True,
    },
]
META = [
    {
        "main_category": "All Beauty",
        "title": "Rose Soap",
        "average_rating": 4.3,
        "rating_number": 12,
        "features": ["Handmade", "Vegan"],
        "description": ["Smells of roses."],
        "price": 7.5,
        "images": [],
        "store": "SoapCo",
        "categories": ["Beauty", "Soap"],
        "details": {"Weight": "100 g"},
        "parent_asin": "B01",
    },
    {
        "main_category": "All Beauty",
        "title": "Lip Balm",
        "average_rating": 3.9,
        "rating_number": 3,
        "features": [],
        "description": [],
        "price": None,
        "images": [],
        "store": None,
        "categories": [],
        "details": {},
        "parent_asin": "B03",
    },
]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_reviews_and_metadata(tmp_path):
    reviews = write_jsonl(tmp_path / "All_Beauty.jsonl", REVIEWS)
    meta = write_jsonl(tmp_path / "meta_All_Beauty.jsonl", META)
    data = load_amazon(reviews, meta)
    inter = data.interactions
    assert tuple(inter.columns) == INTERACTION_COLUMNS
    assert inter["user_id"].tolist() == ["AE1", "AE2", "AE2"]
    assert inter["item_id"].tolist() == ["B01", "B02", "B01"]  # the parent product
    assert inter["event_type"].tolist() == ["rate"] * 3
    assert inter["value"].tolist() == [5.0, 2.0, 4.0]
    assert inter["timestamp"].tolist() == [1588687728, 1588687729, 1588687730]  # ms -> s
    assert inter["event_id"].tolist()[0] == "az:AE1:B01:1588687728"
    items = data.items.set_index("item_id")
    assert tuple(data.items.columns) == ITEM_COLUMNS
    assert sorted(items.index) == ["B01", "B02", "B03"]  # B02: reviewed, no metadata
    soap = items.loc["B01"]
    assert soap["title"] == "Rose Soap"
    assert soap["text"] == "Rose Soap Handmade Vegan Smells of roses."
    assert soap["attributes"] == {
        "main_category": "All Beauty",
        "categories": ["Beauty", "Soap"],
        "store": "SoapCo",
        "price": 7.5,
        "average_rating": 4.3,
        "rating_number": 12,
    }
    assert items.loc["B03", "attributes"] == {
        "main_category": "All Beauty",
        "average_rating": 3.9,
        "rating_number": 3,
    }
    bare = items.loc["B02"]
    assert bare["title"] is None and bare["text"] is None and bare["attributes"] == {}
    assert data.users is None


def test_reviews_only(tmp_path):
    data = load_amazon(write_jsonl(tmp_path / "r.jsonl", REVIEWS))
    assert data.items is None and len(data.interactions) == 3


def test_price_as_text_and_repeated_reviews(tmp_path):
    meta = [dict(META[0], price="$1,299.00"), dict(META[1], price="None")]
    reviews = [REVIEWS[0], REVIEWS[0]]
    data = load_amazon(
        write_jsonl(tmp_path / "r.jsonl", reviews), write_jsonl(tmp_path / "m.jsonl", meta)
    )
    assert data.interactions["event_id"].tolist() == [
        "az:AE1:B01:1588687728",
        "az:AE1:B01:1588687728:1",
    ]
    items = data.items.set_index("item_id")
    assert items.loc["B01", "attributes"]["price"] == 1299.0
    assert "price" not in items.loc["B03", "attributes"]


def test_bad_lines_reported_by_number(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps(REVIEWS[0]), '{"user_id": "AE9", "rating": 5', json.dumps(REVIEWS[1])]
    lines.append(json.dumps(dict(REVIEWS[2], rating="great")))
    lines.append(json.dumps({k: v for k, v in REVIEWS[2].items() if k != "user_id"}))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_amazon(path)
    assert (err.value.file, err.value.line) == (str(path), 2)
    data = load_amazon(path, on_error="skip")
    assert data.interactions["user_id"].tolist() == ["AE1", "AE2"]
    assert [e.line for e in data.skipped] == [2, 4, 5]
    assert "bad value 'great'" in data.skipped[1].reason
    assert "missing user_id" in data.skipped[2].reason


def test_missing_rating_is_an_error(tmp_path):
    row = {k: v for k, v in REVIEWS[0].items() if k != "rating"}
    path = write_jsonl(tmp_path / "r.jsonl", [REVIEWS[1], row])
    with pytest.raises(ConfigError, match="'rating'"):
        load_amazon(write_jsonl(tmp_path / "only.jsonl", [row]))
    data = load_amazon(path, on_error="skip")
    assert data.skipped[0].line == 2 and "missing value" in data.skipped[0].reason


def test_2018_field_names(tmp_path):
    rows = [{"reviewerID": "A1", "asin": "X1", "overall": 4.0, "unixReviewTime": 1400000000}]
    data = load_amazon(write_jsonl(tmp_path / "r.json", rows))
    assert data.interactions[["user_id", "item_id", "value", "timestamp"]].values.tolist() == [
        ["A1", "X1", 4.0, 1400000000]
    ]


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="reviews file not found"):
        load_amazon(tmp_path / "none.jsonl")
    reviews = write_jsonl(tmp_path / "r.jsonl", REVIEWS)
    with pytest.raises(ConfigError, match="metadata file not found"):
        load_amazon(reviews, tmp_path / "meta.jsonl")
