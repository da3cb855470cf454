"""MovieLens 100K, 1M and latest layouts in miniature, written to a temporary directory."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.data.loaders import load_movielens
from recstack.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS
from recstack.errors import ConfigError, DataError

GENRE_FLAGS_TOY = "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"
GENRE_FLAGS_NONE = "1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0"
U_GENRE = (
    "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
    "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
    "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n"
)


def make_100k(root):
    root.mkdir()
    (root / "u.data").write_text(
        "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t242\t1\t878887116\n"
    )
    (root / "u.item").write_bytes(
        (
            f"242|Kolya (1996)|24-Jan-1997||http://x|{GENRE_FLAGS_TOY}\n"
            f"302|Caf\xe9 Society|01-Jan-1997||http://y|{GENRE_FLAGS_NONE}\n"
        ).encode("latin-1")
    )
    (root / "u.user").write_text(
        "196|49|M|writer|55105\n186|39|F|executive|00000\n22|25|M|writer|40206\n"
    )
    (root / "u.genre").write_text(U_GENRE)
    return root


def test_movielens_100k(tmp_path):
    data = load_movielens(make_100k(tmp_path / "ml-100k"))
    inter = data.interactions
    assert tuple(inter.columns) == INTERACTION_COLUMNS
    assert inter["user_id"].tolist() == ["196", "186", "22"]
    assert inter["item_id"].tolist() == ["242", "302", "242"]
    assert inter["event_type"].tolist() == ["rate"] * 3
    assert inter["value"].tolist() == [3.0, 3.0, 1.0]
    assert inter["timestamp"].tolist() == [881250949, 891717742, 878887116]
    assert inter["event_id"].tolist()[0] == "ml:196:242:881250949"
    items = data.items
    assert tuple(items.columns) == ITEM_COLUMNS
    kolya = items.set_index("item_id").loc["242"]
    assert kolya["title"] == "Kolya (1996)"
    assert kolya["attributes"] == {"genres": ["Animation", "Children's", "Comedy"], "year": 1996}
    assert kolya["text"] == "Kolya (1996). Animation, Children's, Comedy"
    cafe = items.set_index("item_id").loc["302"]
    assert cafe["title"] == "Caf\xe9 Society"  # latin-1 decoded
    assert cafe["attributes"] == {"genres": [], "year": 1997}  # year from the release date
    users = data.users
    assert tuple(users.columns) == USER_COLUMNS
    assert users["attributes"].tolist()[1] == {
        "age": 39,
        "gender": "F",
        "occupation": "executive",
        "zip": "00000",
    }
    assert data.source.startswith("movielens-100k:")


def test_movielens_1m_double_colon_layout(tmp_path):
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    (root / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n".encode("latin-1")
    )
    (root / "users.dat").write_text("1::F::1::10::48067\n")
    data = load_movielens(root)
    assert data.interactions["item_id"].tolist() == ["1193", "661"]
    assert data.interactions["value"].tolist() == [5.0, 3.0]
    peach = data.items.set_index("item_id").loc["661"]
    assert peach["attributes"]["genres"] == ["Animation", "Children's", "Musical"]
    assert peach["attributes"]["year"] == 1996
    assert data.users["attributes"].tolist() == [
        {"age": 1, "gender": "F", "occupation": "K-12 student", "zip": "48067"}
    ]


def make_latest(root, sep=",", header=True):
    root.mkdir()
    ratings = [
        ("1", "1", "4.0", "964982703"),
        ("1", "3", "4.5", "964981247"),
        ("2", "1", "0.5", "964982224"),
        ("2", "1", "0.5", "964982224"),  # exact repeat in the source
    ]
    lines = [sep.join(r) for r in ratings]
    if header:
        lines.insert(0, sep.join(("userId", "movieId", "rating", "timestamp")))
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = [
        f"1{sep}Toy Story (1995){sep}Adventure|Animation|Children|Comedy|Fantasy",
        f'3{sep}"Grumpier Old Men, The{sep} ""Director\'s cut"" (1995)"{sep}Comedy|Romance',
        f"5{sep}Babylon 5{sep}(no genres listed)",
    ]
    if header:
        movies.insert(0, sep.join(("movieId", "title", "genres")))
    (root / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
    return root


def test_movielens_latest_with_header_and_tags(tmp_path):
    root = make_latest(tmp_path / "ml-latest-small")
    (root / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n2,1,pixar,1\n3,1,fun,2\n2,1,pixar,3\n4,3,old,4\n"
    )
    data = load_movielens(root)
    inter = data.interactions
    assert inter["value"].tolist() == [4.0, 4.5, 0.5, 0.5]
    ids = inter["event_id"].tolist()
    assert ids == [
        "ml:1:1:964982703",
        "ml:1:3:964981247",
        "ml:2:1:964982224",
        "ml:2:1:964982224:1",
    ]
    items = data.items.set_index("item_id")
    assert items.loc["1", "attributes"] == {
        "genres": ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
        "year": 1995,
        "tags": ["pixar", "fun"],
    }
    assert items.loc["1", "text"].endswith("Tags: pixar, fun")
    assert items.loc["3", "title"] == 'Grumpier Old Men, The, "Director\'s cut" (1995)'
    assert items.loc["5", "attributes"] == {"genres": []}  # no year, no genres
    assert data.users is None


def test_movielens_latest_semicolons_without_header(tmp_path):
    root = make_latest(tmp_path / "copy", sep=";", header=False)
    data = load_movielens(root / "ratings.csv")  # a file inside the directory works too
    assert len(data.interactions) == 4
    assert data.interactions["user_id"].tolist() == ["1", "1", "2", "2"]
    assert len(data.items) == 3
    assert data.items.set_index("item_id").loc["3", "attributes"]["year"] == 1995


def test_movielens_ids_are_stable_across_loads(tmp_path):
    root = make_latest(tmp_path / "ml")
    first = load_movielens(root).interactions["event_id"].tolist()
    assert load_movielens(root).interactions["event_id"].tolist() == first


def test_movielens_bad_rows(tmp_path):
    root = tmp_path / "ml-100k"
    make_100k(root)
    (root / "u.data").write_text("196\t242\t3\t881250949\n186\t302\tx\t891717742\n22\t242\n")
    with pytest.raises(DataError) as err:
        load_movielens(root)
    assert err.value.file == str(root / "u.data") and err.value.line == 2
    data = load_movielens(root, on_error="skip")
    assert len(data.interactions) == 1
    assert [(e.line, e.reason) for e in data.skipped] == [
        (2, "bad value 'x': not a number (column 'rating')"),
        (3, "expected 4 fields, found 2"),
    ]


def test_movielens_missing_directory_or_layout(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_movielens(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a MovieLens directory"):
        load_movielens(tmp_path / "empty")


def test_movielens_value_and_timestamp_types(tmp_path):
    data = load_movielens(make_latest(tmp_path / "ml"))
    assert data.interactions["value"].dtype == np.float64
    assert data.interactions["timestamp"].dtype == np.int64
