"""The one table of recommendation options: GET query and POST body parse alike, field by field."""

from __future__ import annotations

import json

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import QueryParams

from recstack.errors import InvalidRequestError
from recstack.serving.api import params
from recstack.serving.api.params import FIELDS, parse_options, query_options
from recstack.serving.engine.request import MAX_K, RecommendationRequest

# Per field: (query text, JSON value) pairs that mean the same, and values both forms refuse.
AGREE = {
    "k": [("5", 5), ("1", 1), (str(MAX_K), MAX_K)],
    "exclude_seen": [("false", False), ("true", True), ("0", False), ("1", True)],
    "exclude": [(["a"], ["a"]), (["a", "b"], ["a", "b"])],
    "filter": [('{"genre": "x"}', {"genre": "x"}), ("null", None)],
    "explain": [("true", True), ("false", False)],
    "slot": [("challenger", "challenger")],
}
REFUSE = {
    "k": [("0", 0), (str(MAX_K + 1), MAX_K + 1), ("ten", "ten")],
    "exclude_seen": [("maybe", "maybe")],
    "exclude": [([""], [""]), (["x" * 256], ["x" * 256])],
    "filter": [("[1]", [1])],
    "explain": [("2", 2)],
    "slot": [("x" * 256, "x" * 256)],
}


def test_every_field_has_agreeing_and_refused_examples():
    assert {f.name for f in FIELDS} == set(AGREE) == set(REFUSE)


@pytest.mark.parametrize(
    ("name", "text", "value"), [(n, t, v) for n, pairs in AGREE.items() for t, v in pairs]
)
def test_get_and_post_agree(name, text, value):
    from_query = parse_options({name: text}, "query")
    from_body = parse_options({name: value}, "body")
    assert from_query == from_body
    expected = tuple(value) if isinstance(value, list) else value
    assert getattr(from_query, name) == expected


@pytest.mark.parametrize(
    ("name", "text", "value"), [(n, t, v) for n, pairs in REFUSE.items() for t, v in pairs]
)
def test_get_and_post_refuse_alike(name, text, value):
    for values, where in (({name: text}, "query"), ({name: value}, "body")):
        with pytest.raises(Exception) as caught:
            parse_options(values, where)
        if isinstance(caught.value, RequestValidationError):
            assert caught.value.errors()[0]["loc"] == (where, name)
        else:  # a filter that is JSON but not an object: the engine's own 422
            assert name == "filter" and "JSON object" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, RecommendationRequest()),
        ({"k": "5", "exclude_seen": "false"}, RecommendationRequest(k=5, exclude_seen=False)),
        (
            {"k": "1000", "explain": "1", "filter": '{"a": 1}'},
            RecommendationRequest(k=1000, explain=True, filter={"a": 1}),
        ),
        ({"k": "05"}, RecommendationRequest(k=5)),
        ({"k": "+5"}, RecommendationRequest(k=5)),
        ({"exclude_seen": "yes", "explain": "TRUE"}, RecommendationRequest(explain=True)),
        ({"exclude": ["a"]}, RecommendationRequest(exclude=("a",))),
        ({"unknown": "ignored"}, RecommendationRequest()),
    ],
)
def test_query_forms_mean_what_they_say(raw, expected):
    assert parse_options(raw, "query") == expected


@pytest.mark.parametrize("raw", [{"k": "0"}, {"k": "1001"}, {"k": "²"}, {"filter": "x" * 10_001}])
def test_query_forms_out_of_range_are_refused(raw):
    with pytest.raises(RequestValidationError):
        parse_options(raw, "query")


def test_body_is_strict_and_names_unknown_keys():
    for body in ({"k": "5"}, {"k": True}, {"k": 5.0}, {"explain": 1}, {"exclude": "a"}):
        with pytest.raises(RequestValidationError):
            parse_options(body, "body")
    with pytest.raises(RequestValidationError) as caught:
        parse_options({"k": 5, "colour": "red"}, "body")
    assert caught.value.errors()[0]["loc"] == ("body", "colour")


def test_errors_name_every_bad_field():
    with pytest.raises(RequestValidationError) as caught:
        parse_options({"k": "0", "explain": "2"}, "query")
    assert [e["loc"] for e in caught.value.errors()] == [("query", "k"), ("query", "explain")]


def test_a_query_filter_with_nan_is_refused_as_a_body_is():
    with pytest.raises(InvalidRequestError, match="NaN is not a JSON number"):
        parse_options({"filter": '{"year": {"gte": NaN}}'}, "query")
    with pytest.raises(InvalidRequestError, match="-Infinity is not a JSON number"):
        parse_options({"filter": '{"year": {"lt": -Infinity}}'}, "query")


def test_query_options_are_remembered_by_their_text(monkeypatch):
    monkeypatch.setattr(params, "_query_memo", {})
    monkeypatch.setattr(params, "QUERY_MEMO_SIZE", 2)
    first = query_options(b"k=5", lambda: QueryParams(b"k=5"))
    assert first == RecommendationRequest(k=5)
    # the same text is not read again: the stale QueryParams below would mean k=10
    assert query_options(b"k=5", lambda: QueryParams(b"")) is first
    for _ in range(2):  # an invalid query raises every time and is never kept
        with pytest.raises(RequestValidationError):
            query_options(b"k=0", lambda: QueryParams(b"k=0"))
    assert list(params._query_memo) == [b"k=5"]
    query_options(b"k=6", lambda: QueryParams(b"k=6"))
    query_options(b"k=7", lambda: QueryParams(b"k=7"))  # the oldest entry goes
    assert list(params._query_memo) == [b"k=6", b"k=7"]
    long = b"k=8&" + b"exclude=x&" * 300
    assert query_options(long, lambda: QueryParams(long)).k == 8
    assert long not in params._query_memo  # long texts are parsed every time


def test_http_get_and_post_return_the_same_list(serve, als_model):
    with serve(als_model) as served:
        options = {"k": 7, "exclude_seen": False, "filter": {"difficulty": {"in": [1, 2]}}}
        query = {**options, "filter": json.dumps(options["filter"])}
        path = "/v1/users/u3/recommendations"
        get = served.client.get(path, params=query, headers=served.headers())
        post = served.client.post(path, json=options, headers=served.headers())
        assert get.status_code == post.status_code == 200, (get.text, post.text)
        fresh = ("request_id", "recommendation_id")  # new per response
        strip = lambda body: {k: v for k, v in body.items() if k not in fresh}  # noqa: E731
        assert strip(get.json()) == strip(post.json())
        assert len(get.json()["items"]) == 7
        bad = served.client.post(path, content=b"{not json", headers=served.headers())
        assert bad.status_code == 422 and "malformed JSON" in bad.json()["error"]["message"]
        listed = served.client.post(path, content=b"[1, 2]", headers=served.headers())
        assert listed.status_code == 422
        nan = '{"difficulty": {"gte": NaN}}'
        for response in (
            served.client.get(path, params={"filter": nan}, headers=served.headers()),
            served.client.post(path, content=f'{{"filter": {nan}}}', headers=served.headers()),
        ):
            assert response.status_code == 422, response.text
        again = served.client.get(path, params=query, headers=served.headers())  # remembered
        assert strip(again.json()) == strip(get.json())
