"""The one validation of ids, event types, values, timestamps and context."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recstack.data import validation as v
from recstack.errors import DataError
from recstack.store.frames import prepare_interactions


def test_single_values_give_the_bare_reason_or_the_row_path_message() -> None:
    assert v.check_id(17, "user_id") == "17"
    with pytest.raises(DataError) as bare:
        v.check_id("", "user_id")
    assert str(bare.value) == "user_id is empty"
    with pytest.raises(DataError) as at_row:
        v.check_id("x" * 256, "item_id", row=3)
    assert str(at_row.value) == "row 3 of the interactions: item_id is longer than 255 characters"
    with pytest.raises(DataError, match="^user_id is missing$"):
        v.check_id(None, "user_id")


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (v.check_event_type, "vi\new", "event_type 'vi\\new' has control characters"),
        (v.check_event_type, "t" * 33, "event_type is longer than 32 characters"),
        (v.check_value, "lots", "value 'lots' is not a number"),
        (v.check_timestamp, None, "timestamp is missing"),
        (v.check_timestamp, "soon", "timestamp 'soon' is not epoch seconds"),
        (v.check_context, "{nope", "context is not valid JSON"),
        (v.check_context, {"when": object()}, "context cannot be stored as JSON"),
    ],
)
def test_single_value_errors(check, value, message) -> None:
    with pytest.raises(DataError) as bare:
        check(value)
    assert str(bare.value).startswith(message)
    with pytest.raises(DataError) as at_row:
        check(value, row=7)
    assert str(at_row.value).startswith(f"row 7 of the interactions: {message}")


def test_single_values_convert() -> None:
    assert v.check_event_type("view") == "view"
    assert v.check_value(None) is None and v.check_value(float("nan")) is None
    assert v.check_value("2.5") == 2.5 and v.check_value(np.int64(3)) == 3.0
    assert v.check_timestamp(12.9) == 12 and v.check_timestamp(np.int64(5)) == 5
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    assert v.check_timestamp(moment) == 1704067200
    assert v.check_context({"k": np.int64(1)}) == '{"k":1}'
    assert v.check_context('{"a": 1}') == '{"a": 1}' and v.check_context(None) is None


def test_event_columns_fast_and_general_paths_agree() -> None:
    plain = [("e1", "u1", "i1", "view", None, 10, None), ("e2", "u2", "i1", "rate", 4, 11.5, None)]
    unusual = [
        ("e1", "u1", "i1", "view", np.nan, np.int64(10), None),
        ("e2", "u2", "i1", "rate", "4", "11.5", pd.NA),
    ]
    expected = [
        ["e1", "e2"],
        ["u1", "u2"],
        ["i1", "i1"],
        ["view", "rate"],
        [None, 4.0],
        [10, 11],
        [None, None],
    ]
    assert v.event_columns(plain) == expected
    assert v.event_columns(unusual) == expected
    assert v.event_columns([]) == [[] for _ in range(7)]


def test_list_and_frame_rules_report_the_same_row() -> None:
    values = ["ok", None, ""]
    with pytest.raises(DataError) as from_list:
        v.text_values(values, "user_id", "f.csv", v.MAX_ID_LENGTH, "users")
    frame = pd.DataFrame({"user_id": pd.Series(values, dtype=object)})
    with pytest.raises(DataError) as from_frame:
        v.string_column(frame, "user_id", "f.csv", v.MAX_ID_LENGTH, "users")
    assert (
        str(from_list.value)
        == str(from_frame.value)
        == "f.csv: row 1 of the users: user_id is missing"
    )


def test_too_long_ignores_missing() -> None:
    mask = v.too_long(pd.Series(["abc", None, "abcdef"], dtype=object), 4)
    assert mask.tolist() == [False, False, True]


def test_dumps_json_is_compact_and_takes_numpy() -> None:
    assert v.dumps_json({"a": np.float32(0.5), "b": np.arange(2), "é": 1}) == (
        '{"a":0.5,"b":[0,1],"é":1}'
    )


def test_ids_with_nul_characters_are_rejected_alike() -> None:
    rows = [("e1", "u1", "i1", "view", None, 1, None), ("e2", "u\x00", "i1", "view", None, 1, None)]
    with pytest.raises(DataError) as from_rows:
        v.event_columns(rows)
    frame = pd.DataFrame(
        rows,
        columns=["event_id", "user_id", "item_id", "event_type", "value", "timestamp", "context"],
    )
    with pytest.raises(DataError) as from_frame:
        prepare_interactions(frame, "events")
    assert str(from_rows.value) == str(from_frame.value)
    assert (
        str(from_rows.value)
        == "events: row 1 of the interactions: user_id contains a NUL character"
    )
    with pytest.raises(DataError, match="^item_id contains a NUL character$"):
        v.check_id("a\x00b", "item_id")


def test_nul_scan_of_arrow_strings_respects_slices() -> None:
    ids = pd.Series([f"s{k}" for k in range(100)], dtype="str")
    ids.iloc[42] = "a\x00b"
    frame = pd.DataFrame({"user_id": ids.iloc[43:].reset_index(drop=True)})
    assert v.string_column(frame, "user_id", None, v.MAX_ID_LENGTH, "users").iloc[0] == "s43"
    frame = pd.DataFrame({"user_id": ids.iloc[40:50].reset_index(drop=True)})
    with pytest.raises(DataError, match="row 2 of the users: user_id contains a NUL character"):
        v.string_column(frame, "user_id", None, v.MAX_ID_LENGTH, "users")
