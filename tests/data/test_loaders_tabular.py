"""CSV / JSONL / Parquet loaders: mapping, timestamps, ids, and bad rows reported by file + line."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recstack.data.loaders import (
    ColumnMapping,
    LoadedData,
    load_interactions,
    load_items,
    load_users,
)
from recstack.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS
from recstack.errors import ConfigError, DataError

T0 = 1_600_000_000


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def assert_canonical(data: LoadedData) -> None:
    frame = data.interactions
    assert tuple(frame.columns) == INTERACTION_COLUMNS
    for column in ("event_id", "user_id", "item_id", "event_type"):
        assert pd.api.types.is_string_dtype(frame[column].dtype), column
    assert frame["value"].dtype == np.float64
    assert frame["timestamp"].dtype == np.int64
    assert frame["context"].dtype == object
    assert all(c is None or isinstance(c, str) for c in frame["context"])
    assert frame["event_id"].is_unique


def test_csv_with_default_mapping(tmp_path):
    path = write(
        tmp_path / "events.csv",
        "user_id,item_id,event_type,value,timestamp\n"
        "u1,i1,view,,1600000000\n"
        "u1,i2,rate,4.5,1600000060\n"
        " u2 ,007,purchase,19.99,1600000120\n",
    )
    data = load_interactions(path)
    assert_canonical(data)
    f = data.interactions
    assert f["user_id"].tolist() == ["u1", "u1", "u2"]
    assert f["item_id"].tolist() == ["i1", "i2", "007"]  # ids stay strings, leading zeros kept
    assert f["event_type"].tolist() == ["view", "rate", "purchase"]
    assert np.isnan(f["value"][0]) and f["value"][1:].tolist() == [4.5, 19.99]
    assert f["timestamp"].tolist() == [T0, T0 + 60, T0 + 120]
    assert data.skipped == [] and data.items is None and data.source == str(path)


def test_custom_mapping_default_event_type_and_rename(tmp_path):
    path = write(
        tmp_path / "plays.tsv",
        "who\twhat\taction\twhen\nalice\tsong1\tplay\t1600000000\nbob\tsong2\t\t1600000001\n",
    )
    mapping = ColumnMapping(
        user_id="who",
        item_id="what",
        event_type="action",
        timestamp="when",
        value=None,
        event_type_map={"play": "view"},
        default_event_type="click",
    )
    f = load_interactions(path, mapping).interactions
    assert f["event_type"].tolist() == ["view", "click"]
    assert f["user_id"].tolist() == ["alice", "bob"]


def test_optional_columns_absent_get_defaults(tmp_path):
    path = write(tmp_path / "e.csv", "user_id;item_id;timestamp\nu1;i1;1600000000\n")
    f = load_interactions(path).interactions  # ';' detected from the header
    assert f["event_type"].tolist() == ["view"]
    assert np.isnan(f["value"][0])
    assert f["context"].tolist() == [None]


def test_no_timestamp_column_when_mapping_says_none(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id\nu1,i1\nu2,i2\n")
    f = load_interactions(path, ColumnMapping(timestamp=None)).interactions
    assert f["timestamp"].tolist() == [0, 0]


def test_missing_mapped_column_is_config_error_listing_columns(tmp_path):
    path = write(tmp_path / "e.csv", "uid,item_id,timestamp\nu1,i1,1\n")
    with pytest.raises(ConfigError) as err:
        load_interactions(path)
    assert "'user_id'" in str(err.value) and "uid, item_id, timestamp" in str(err.value)
    with pytest.raises(ConfigError, match="available columns"):
        load_interactions(path, ColumnMapping(user_id="uid", value="score"))
    path2 = write(tmp_path / "f.csv", "user_id,item_id\nu1,i1\n")
    with pytest.raises(ConfigError, match="'timestamp'"):
        load_interactions(path2)


def test_timestamps_seconds_milliseconds_and_iso(tmp_path):
    path = write(
        tmp_path / "e.csv",
        "user_id,item_id,timestamp\n"
        "u,a,1600000000\n"
        "u,b,1600000000123\n"
        "u,c,2020-09-13T12:26:40Z\n"
        "u,d,2020-09-13T14:26:40+02:00\n"
        "u,e,2020-09-13 12:26:40\n"
        "u,f,2020-09-13\n"
        "u,g,1600000000.9\n",
    )
    f = load_interactions(path).interactions
    assert f["timestamp"].tolist() == [T0, T0, T0, T0, T0, T0 - 44800, T0]


def test_timestamp_unit_forced(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu,a,5000\n")
    assert load_interactions(path, ColumnMapping(timestamp_unit="ms")).interactions[
        "timestamp"
    ].tolist() == [5]
    assert load_interactions(path).interactions["timestamp"].tolist() == [5000]
    epoch = write(tmp_path / "epoch.csv", "user_id,item_id,timestamp\nu,a,1600000000\n")
    with pytest.raises(DataError, match="expected an ISO 8601 date"):
        load_interactions(epoch, ColumnMapping(timestamp_unit="iso"))
    iso = write(tmp_path / "iso.csv", "user_id,item_id,timestamp\nu,a,2020-01-01\n")
    with pytest.raises(DataError, match="expected epoch seconds"):
        load_interactions(iso, ColumnMapping(timestamp_unit="s"))


CSV_WITH_ERRORS = (
    "user_id,item_id,event_type,value,timestamp\n"  # line 1
    "u1,i1,view,,1600000000\n"  # 2 ok
    ",i2,view,,1600000000\n"  # 3 missing user
    "u3,i3,rate,abc,1600000000\n"  # 4 non-numeric value
    "\n"  # 5 blank: ignored
    "u5,i5,view,,yesterday\n"  # 6 bad timestamp
    "u6,i6,view,1,1600000000,extra\n"  # 7 wrong field count
    "u7,,view,,\n"  # 8 missing item and timestamp
    "u8,i8,click,2,1600000000123\n"  # 9 ok (ms)
)


def test_csv_errors_fail_on_first_with_file_and_line(tmp_path):
    path = write(tmp_path / "bad.csv", CSV_WITH_ERRORS)
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert err.value.file == str(path)
    assert err.value.line == 3
    assert "missing user_id" in err.value.reason


def test_csv_errors_skip_keeps_good_rows_and_lists_bad(tmp_path):
    path = write(tmp_path / "bad.csv", CSV_WITH_ERRORS)
    data = load_interactions(path, on_error="skip")
    assert data.interactions["user_id"].tolist() == ["u1", "u8"]
    assert data.interactions["timestamp"].tolist() == [T0, T0]
    lines = [(e.file, e.line) for e in data.skipped]
    assert lines == [(str(path), n) for n in (3, 4, 6, 7, 8)]
    reasons = [e.reason for e in data.skipped]
    assert "missing user_id" in reasons[0]
    assert "bad value 'abc'" in reasons[1]
    assert "bad timestamp 'yesterday'" in reasons[2]
    assert reasons[3] == "expected 5 fields, found 6"
    assert "missing item_id" in reasons[4] and "missing timestamp" in reasons[4]
    assert str(data.skipped[0]).startswith(f"{path}:3: ")


def test_line_numbers_after_several_dropped_lines(tmp_path):
    lines = ["user_id,item_id,timestamp"]
    lines += ["a,b,c,d", "", "u,i,1", "x,y,z,w", "", "", "u,i,nope"]
    path = write(tmp_path / "e.csv", "\n".join(lines) + "\n")
    data = load_interactions(path, on_error="skip")
    assert [e.line for e in data.skipped] == [2, 5, 8]
    assert len(data.interactions) == 1


def test_jsonl_good_file(tmp_path):
    rows = [
        {"user_id": 1, "item_id": "a", "timestamp": T0, "context": {"device": "ios"}},
        {"user_id": 2, "item_id": "b", "timestamp": T0 + 1, "value": 3},
        {"user_id": 3, "item_id": "c", "timestamp": "2020-09-13T12:26:40Z"},
    ]
    path = write(tmp_path / "e.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    data = load_interactions(path)
    assert_canonical(data)
    f = data.interactions
    assert f["user_id"].tolist() == ["1", "2", "3"]  # integer ids, no ".0"
    assert f["timestamp"].tolist() == [T0, T0 + 1, T0]
    assert f["context"].tolist() == ['{"device":"ios"}', None, None]
    assert f["value"].tolist()[1] == 3.0


def test_jsonl_bad_json_and_wrong_types_by_line(tmp_path):
    path = write(
        tmp_path / "e.jsonl",
        '{"user_id": "u1", "item_id": "a", "timestamp": 1600000000}\n'  # 1 ok
        '{"user_id": "u2", "item_id": "b"\n'  # 2 broken JSON
        "\n"  # 3 blank
        '{"user_id": {"id": 3}, "item_id": "c", "timestamp": 1}\n'  # 4 nested id
        "[1, 2]\n"  # 5 not an object
        '{"user_id": "u6", "item_id": "f", "timestamp": 1, "value": "five"}\n'  # 6 bad value
        '{"user_id": "u7", "item_id": "g", "timestamp": 1, "context": "[1]"}\n'  # 7 bad context
        '{"user_id": "u8", "item_id": "h", "timestamp": 1600000000}\n',  # 8 ok
    )
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert (err.value.file, err.value.line) == (str(path), 2)
    assert err.value.reason.startswith("invalid JSON")
    data = load_interactions(path, on_error="skip")
    assert data.interactions["user_id"].tolist() == ["u1", "u8"]
    assert [e.line for e in data.skipped] == [2, 4, 5, 6, 7]
    assert "must be a string or a number" in data.skipped[1].reason
    assert data.skipped[2].reason == "expected a JSON object, found list"
    assert "bad value 'five'" in data.skipped[3].reason
    assert "not a JSON object" in data.skipped[4].reason


def test_jsonl_valid_json_bad_field_line_counts_blank_lines(tmp_path):
    path = write(
        tmp_path / "e.jsonl",
        '{"user_id": "u1", "item_id": "a", "timestamp": 1}\n\n\n'
        '{"user_id": "u2", "item_id": "b", "timestamp": "soon"}\n',
    )
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert err.value.line == 4


def test_gzipped_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "e.csv.gz"
    with gzip.open(csv_path, "wt") as fh:
        fh.write("user_id,item_id,timestamp\nu1,i1,1600000000\nu2,i2,bad\n")
    data = load_interactions(csv_path, on_error="skip")
    assert data.interactions["user_id"].tolist() == ["u1"]
    assert data.skipped[0].line == 3
    json_path = tmp_path / "e.jsonl.gz"
    with gzip.open(json_path, "wt") as fh:
        fh.write('{"user_id": "u1", "item_id": "i1", "timestamp": 1600000000}\n')
    assert load_interactions(json_path).interactions["item_id"].tolist() == ["i1"]


def test_parquet_with_datetime_column_and_row_numbers(tmp_path):
    table = pa.table(
        {
            "uid": ["a", None, "c"],
            "iid": pa.array([1, 2, 3], pa.int64()),
            "ts": pa.array(
                [pd.Timestamp("2020-09-13 12:26:40"), pd.Timestamp("2020-09-13 12:26:41"), None],
                pa.timestamp("ms"),
            ),
        }
    )
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    mapping = ColumnMapping(user_id="uid", item_id="iid", timestamp="ts")
    with pytest.raises(DataError) as err:
        load_interactions(path, mapping)
    assert (err.value.file, err.value.line) == (str(path), 2)
    data = load_interactions(path, mapping, on_error="skip")
    assert data.interactions["item_id"].tolist() == ["1"]
    assert data.interactions["timestamp"].tolist() == [T0]
    assert [e.line for e in data.skipped] == [2, 3]
    assert "missing timestamp" in data.skipped[1].reason


def test_derived_event_ids_are_stable_and_distinguish_repeats(tmp_path):
    body = "user_id,item_id,timestamp\nu1,i1,1600000000\nu1,i1,1600000000\nu2,i1,1600000000\n"
    first = load_interactions(write(tmp_path / "a.csv", body)).interactions["event_id"]
    again = load_interactions(write(tmp_path / "b.csv", body)).interactions["event_id"]
    assert first.tolist() == again.tolist()
    assert first.is_unique and all(len(e) == 20 for e in first)
    appended = load_interactions(write(tmp_path / "c.csv", body + "u3,i3,1600000001\n"))
    assert appended.interactions["event_id"].tolist()[:3] == first.tolist()


def test_given_event_ids_kept_and_blank_ones_derived(tmp_path):
    path = write(tmp_path / "e.csv", "event_id,user_id,item_id,timestamp\nabc,u1,i1,1\n,u2,i2,2\n")
    ids = load_interactions(path).interactions["event_id"].tolist()
    assert ids[0] == "abc" and len(ids[1]) == 20


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_interactions(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="unsupported file type"):
        load_interactions(write(tmp_path / "e.xlsx", "x"))
    with pytest.raises(ValueError, match="on_error"):
        load_interactions(write(tmp_path / "e.csv", "user_id\n"), on_error="ignore")
    with pytest.raises(DataError, match="empty file"):
        load_interactions(write(tmp_path / "empty.csv", ""))


def test_mapping_from_toml(tmp_path):
    path = write(
        tmp_path / "mapping.toml",
        'user_id = "learner"\nitem_id = "course"\nvalue = false\ntimestamp_unit = "ms"\n'
        'attributes = ["genre", "level"]\n[event_type_map]\nplay = "view"\n',
    )
    mapping = ColumnMapping.from_toml(path)
    assert mapping.user_id == "learner" and mapping.item_id == "course"
    assert mapping.value is None and mapping.timestamp_unit == "ms"
    assert mapping.attributes == ["genre", "level"]
    assert mapping.event_type_map == {"play": "view"}
    assert mapping.timestamp == "timestamp"


def test_mapping_from_toml_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown mapping key 'user'"):
        ColumnMapping.from_toml(write(tmp_path / "a.toml", 'user = "x"\n'))
    with pytest.raises(ConfigError, match="attributes must be a list"):
        ColumnMapping.from_toml(write(tmp_path / "b.toml", 'attributes = "genre"\n'))
    with pytest.raises(ConfigError, match="timestamp_unit"):
        ColumnMapping.from_toml(write(tmp_path / "c.toml", 'timestamp_unit = "days"\n'))
    with pytest.raises(ConfigError, match="invalid TOML"):
        ColumnMapping.from_toml(write(tmp_path / "d.toml", "user_id = \n"))
    with pytest.raises(ConfigError, match="not found"):
        ColumnMapping.from_toml(tmp_path / "none.toml")


def test_load_items_with_attributes_lists_numbers_and_active(tmp_path):
    path = write(
        tmp_path / "items.csv",
        "item_id,title,genres,year,price,active,description\n"
        "m1,Toy Story,Animation|Comedy,1995,9.5,true,A toy\n"
        "m2,,Drama,1994,,no,\n"
        "m3,Heat,,1995,12,1,Cops\n",
    )
    mapping = ColumnMapping(
        text="description", attributes=["genres", "year", "price"], active="active"
    )
    data = load_items(path, mapping)
    items = data.items
    assert tuple(items.columns) == ITEM_COLUMNS
    assert len(data.interactions) == 0 and tuple(data.interactions.columns) == INTERACTION_COLUMNS
    assert items["item_id"].tolist() == ["m1", "m2", "m3"]
    assert items["title"].tolist() == ["Toy Story", None, "Heat"]
    assert items["text"].tolist() == ["A toy", None, "Cops"]
    assert items["attributes"].tolist() == [
        {"genres": ["Animation", "Comedy"], "year": 1995, "price": 9.5},
        {"genres": "Drama", "year": 1994},
        {"year": 1995, "price": 12.0},
    ]
    assert items["active"].tolist() == [True, False, True]


def test_load_items_errors_by_line(tmp_path):
    path = write(
        tmp_path / "items.csv",
        'item_id,title,attributes\nm1,A,"{""k"": 1}"\n,B,\nm3,C,not json\nm4,D,\n',
    )
    with pytest.raises(DataError) as err:
        load_items(path)
    assert err.value.line == 3 and "missing item_id" in err.value.reason
    data = load_items(path, on_error="skip")
    assert data.items["item_id"].tolist() == ["m1", "m4"]
    assert data.items["attributes"].tolist() == [{"k": 1}, {}]
    assert [e.line for e in data.skipped] == [3, 4]
    with pytest.raises(ConfigError, match="attribute column 'genre' not found"):
        load_items(path, ColumnMapping(attributes=["genre"]))


def test_load_items_jsonl_nested_attributes(tmp_path):
    path = write(
        tmp_path / "items.jsonl",
        json.dumps({"item_id": "a", "title": "A", "tags": ["x", "y"], "meta": {"k": 1}}) + "\n",
    )
    items = load_items(path, ColumnMapping(attributes=["tags", "meta"])).items
    assert items["attributes"].tolist() == [{"tags": ["x", "y"], "meta": {"k": 1}}]


def test_load_users(tmp_path):
    path = write(tmp_path / "users.csv", "user_id,age,country\nu1,31,NL\nu2,,DE\n")
    data = load_users(path, ColumnMapping(attributes=["age", "country"]))
    assert tuple(data.users.columns) == USER_COLUMNS
    assert data.users["attributes"].tolist() == [{"age": 31, "country": "NL"}, {"country": "DE"}]


def test_encoding_errors_and_latin1_mapping(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b"user_id,item_id,timestamp\nu0,i0,1\n\nu1,caf\xe9,1\n")
    with pytest.raises(DataError) as err:
        load_interactions(path)
    assert err.value.line == 4 and "not valid utf-8" in err.value.reason
    data = load_interactions(path, ColumnMapping(encoding="latin-1"))
    assert data.interactions["item_id"].tolist() == ["i0", "caf\xe9"]


def test_empty_jsonl_gives_no_rows(tmp_path):
    path = write(tmp_path / "e.jsonl", "")
    data = load_interactions(path)
    assert len(data.interactions) == 0
    assert tuple(data.interactions.columns) == INTERACTION_COLUMNS
    only_broken = write(tmp_path / "b.jsonl", "{oops\n")
    with pytest.raises(DataError, match="invalid JSON"):
        load_interactions(only_broken)
    assert [e.line for e in load_interactions(only_broken, on_error="skip").skipped] == [1]


def test_over_long_ids_and_event_types(tmp_path):
    long_user, long_type = "u" * 256, "t" * 33
    path = write(
        tmp_path / "e.csv",
        "event_id,user_id,item_id,event_type,timestamp\n"
        f"e1,{long_user},i1,view,1\n"
        f"e2,u2,i2,{long_type},1\n"
        f"{'e' * 300},u3,i3,view,1\n"
        "e4,u4,i4,view,1\n",
    )
    data = load_interactions(path, on_error="skip")
    assert data.interactions["event_id"].tolist() == ["e4"]
    assert [e.line for e in data.skipped] == [2, 3, 4]
    assert "user_id is 256 characters long, more than 255" in data.skipped[0].reason
    assert "longer than 32 characters" in data.skipped[1].reason
    assert "event_id is 300 characters long" in data.skipped[2].reason


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu1,i1,1\n")
    load_interactions(path, progress=True)
    captured = capsys.readouterr()
    assert "loading e.csv" in captured.err and captured.out == ""
