"""MovieLens loader: 100K, 1M/10M and latest/20M/25M layouts, detected from the files present.

Ratings become ``rate`` events valued by the rating. Items get the full title, the release
``year`` taken from it, the ``genres`` list ("unknown"/"(no genres listed)" dropped), user
``tags`` where the release has a tags file, and a ``text`` of title, genres and tags for content
models. Event ids are ``ml:{user}:{item}:{timestamp}``; a repeat of the same triple gets
``:1``, ``:2``... in file order, so ids are unique and stable across re-imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from recstack.data.event_ids import event_ids
from recstack.data.loaders.cells import clean_ids
from recstack.data.loaders.checks import RowChecks, finish
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.progress import step_progress
from recstack.data.loaders.readers import (
    RawTable,
    first_line,
    open_text_bytes,
    read_delimited,
    sniff_delimiter,
)
from recstack.data.loaders.result import (
    LoadedData,
    OnError,
    check_on_error,
    items_frame,
    users_frame,
)
from recstack.data.loaders.validate import build_interactions
from recstack.errors import ConfigError, DataError

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRE = frozenset({"unknown", "(no genres listed)", ""})
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
RATING_COLUMNS = ("user", "item", "rating", "timestamp")
RATINGS_MAPPING = ColumnMapping(
    user_id="user",
    item_id="item",
    value="rating",
    timestamp="timestamp",
    event_type=None,
    event_id=None,
    default_event_type="rate",
    timestamp_unit="s",
    title=None,
    text=None,
    attributes_json=None,
)
YEAR_PATTERN = r"\((\d{4})(?:\s*[-\u2013]\s*\d{4})?\)\s*$"


@dataclass(frozen=True)
class Layout:
    """The files of one MovieLens release family."""

    name: str
    ratings: str
    movies: str
    users: str | None
    tags: str | None
    separator: str | None


LAYOUTS = (
    Layout("100k", "u.data", "u.item", "u.user", None, "\t"),
    Layout("1m-10m", "ratings.dat", "movies.dat", "users.dat", "tags.dat", "::"),
    Layout("latest-20m-25m", "ratings.csv", "movies.csv", None, "tags.csv", None),
)


def detect_layout(root: Path) -> Layout:
    """Which MovieLens release ``root`` holds, from the ratings file present."""
    for layout in LAYOUTS:
        if (root / layout.ratings).exists():
            return layout
    expected = ", ".join(layout.ratings for layout in LAYOUTS)
    raise ConfigError(f"{root}: not a MovieLens directory (expected one of {expected})")


def load_movielens(
    path: str | Path, on_error: OnError = "fail", progress: bool = False
) -> LoadedData:
    """Load a MovieLens release directory (or any file inside it).

    Raises:
        ConfigError: the directory holds no MovieLens ratings file.
        DataError: a malformed row under ``on_error="fail"``.
    """
    check_on_error(on_error)
    root = Path(path)
    if not root.exists():
        raise ConfigError(f"MovieLens path not found: {root}")
    root = root if root.is_dir() else root.parent
    layout = detect_layout(root)
    skipped: list[DataError] = []
    with step_progress(f"loading MovieLens {layout.name}", 4, progress) as steps:
        raw = _read_fixed(root / layout.ratings, RATING_COLUMNS, layout, encoding="utf-8")
        steps.advance("validating ratings")
        interactions, bad = build_interactions(
            raw,
            RATINGS_MAPPING,
            on_error,
            make_event_ids=partial(event_ids, prefix="ml"),
            value_required=True,
        )
        skipped += bad
        steps.advance("reading movies")
        tags = None
        if layout.tags and (root / layout.tags).exists():
            tags, bad = _read_tags(root / layout.tags, layout, on_error)
            skipped += bad
        items, bad = _read_movies(root, layout, tags, on_error)
        skipped += bad
        steps.advance("reading users")
        users = None
        if layout.users and (root / layout.users).exists():
            users, bad = _read_users(root / layout.users, layout, on_error)
            skipped += bad
        steps.advance("done")
    skipped.sort(key=lambda e: (e.file or "", e.line or 0))
    return LoadedData(interactions, items, users, skipped, source=f"movielens-{layout.name}:{root}")


def _read_fixed(path: Path, names: tuple[str, ...], layout: Layout, encoding: str) -> RawTable:
    """A MovieLens table with known columns; the header line and separator of ``.csv`` files
    are detected (the official files have a header and commas, copies may differ)."""
    if layout.separator is not None:
        return read_delimited(
            path, names=names, header=False, delimiter=layout.separator, encoding=encoding
        )
    top = first_line(path, encoding)
    sep = sniff_delimiter(top)
    first = top.split(sep, 1)[0].strip().strip('"').lstrip("\ufeff")
    has_header = not first.lstrip("-").isdigit()
    return read_delimited(path, names=names, header=has_header, delimiter=sep, encoding=encoding)


def _text_encoding(path: Path) -> str:
    """UTF-8 when the file decodes as such, else Latin-1 (older releases)."""
    try:
        open_text_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _read_movies(
    root: Path, layout: Layout, tags: pd.Series | None, on_error: OnError
) -> tuple[pd.DataFrame, list[DataError]]:
    path = root / layout.movies
    if not path.exists():
        raise ConfigError(f"{root}: {layout.movies} not found next to {layout.ratings}")
    encoding = _text_encoding(path)
    if layout.name == "100k":
        genre_names = _genres_100k(root / "u.genre")
        names = ("item", "title", "release", "video_release", "url", *genre_names)
        raw = read_delimited(path, names=names, header=False, delimiter="|", encoding=encoding)
        flags = raw.frame[list(genre_names)].to_numpy() == "1"
        genre_arr = np.asarray(genre_names, dtype=object)
        genres = [list(genre_arr[row]) for row in flags]
        release_year = raw.frame["release"].str.extract(r"(\d{4})\s*$")[0]
    else:
        raw = _read_fixed(path, ("item", "title", "genres"), layout, encoding)
        genres = [g.split("|") for g in raw.frame["genres"].fillna("").tolist()]
        release_year = None
    checks = RowChecks(len(raw.frame))
    ids = clean_ids(raw.frame["item"], "item_id", "movieId", checks)
    keep, errors = finish(raw, checks, on_error)
    titles = raw.frame["title"].str.strip()
    year = titles.str.extract(YEAR_PATTERN)[0]
    if release_year is not None:
        year = year.fillna(release_year)
    year_values = pd.to_numeric(year, errors="coerce").to_numpy()
    item_tags = tags.reindex(ids.to_numpy()).tolist() if tags is not None else None
    attributes, texts = [], []
    for row, (title, movie_genres) in enumerate(zip(titles.tolist(), genres, strict=True)):
        wanted = [g.strip() for g in movie_genres if g.strip() not in NO_GENRE]
        attrs: dict = {"genres": wanted}
        if year_values[row] == year_values[row]:
            attrs["year"] = int(year_values[row])
        parts = [title if isinstance(title, str) else ""]
        if wanted:
            parts.append(", ".join(wanted))
        if item_tags is not None and isinstance(item_tags[row], list):
            attrs["tags"] = item_tags[row]
            parts.append("Tags: " + ", ".join(item_tags[row]))
        attributes.append(attrs)
        texts.append(". ".join(p for p in parts if p))
    titles_out = titles.astype(object).where(titles.notna() & (titles != ""), None)
    items = items_frame(
        ids[keep],
        titles_out.to_numpy(dtype=object)[keep],
        np.asarray(texts, dtype=object)[keep],
        [a for a, k in zip(attributes, keep, strict=True) if k],
    )
    return items.drop_duplicates("item_id", keep="last").reset_index(drop=True), errors


def _genres_100k(path: Path) -> tuple[str, ...]:
    """Genre names in flag order from ``u.genre`` (``name|index`` lines), else the known list."""
    if not path.exists():
        return GENRES_100K
    pairs = []
    for line in open_text_bytes(path).decode(_text_encoding(path)).splitlines():
        if "|" in line:
            name, _, index = line.rpartition("|")
            if index.strip().isdigit():
                pairs.append((int(index), name.strip()))
    return tuple(name for _, name in sorted(pairs)) or GENRES_100K


def _read_tags(path: Path, layout: Layout, on_error: OnError) -> tuple[pd.Series, list[DataError]]:
    """Distinct tags per movie, in order of first use."""
    raw = _read_fixed(path, ("user", "item", "tag", "timestamp"), layout, _text_encoding(path))
    checks = RowChecks(len(raw.frame))
    items = clean_ids(raw.frame["item"], "item_id", "movieId", checks)
    keep, errors = finish(raw, checks, on_error)
    frame = pd.DataFrame({"item": items[keep], "tag": raw.frame["tag"].str.strip()[keep]})
    frame = frame[frame["tag"].notna() & (frame["tag"] != "")].drop_duplicates()
    tags = frame.groupby("item", sort=False)["tag"].agg(list)
    return tags, errors


def _read_users(
    path: Path, layout: Layout, on_error: OnError
) -> tuple[pd.DataFrame, list[DataError]]:
    encoding = _text_encoding(path)
    if layout.name == "100k":
        names = ("user", "age", "gender", "occupation", "zip")
        raw = read_delimited(path, names=names, header=False, delimiter="|", encoding=encoding)
        occupation = raw.frame["occupation"].str.strip()
    else:
        names = ("user", "gender", "age", "occupation", "zip")
        raw = _read_fixed(path, names, layout, encoding)
        codes = pd.to_numeric(raw.frame["occupation"], errors="coerce")
        known = codes.between(0, len(OCCUPATIONS_1M) - 1)
        occupation = raw.frame["occupation"].str.strip().where(~known, None)
        lookup = np.asarray(OCCUPATIONS_1M, dtype=object)
        occupation = occupation.astype(object)
        occupation[known] = lookup[codes[known].astype(int).to_numpy()]
    checks = RowChecks(len(raw.frame))
    ids = clean_ids(raw.frame["user"], "user_id", "userId", checks)
    keep, errors = finish(raw, checks, on_error)
    ages = pd.to_numeric(raw.frame["age"], errors="coerce").tolist()
    attributes = []
    for age, gender, job, zipcode in zip(
        ages,
        raw.frame["gender"].str.strip().tolist(),
        occupation.tolist(),
        raw.frame["zip"].str.strip().tolist(),
        strict=True,
    ):
        attrs: dict = {}
        if age == age:
            attrs["age"] = int(age)
        for key, value in (("gender", gender), ("occupation", job), ("zip", zipcode)):
            if isinstance(value, str) and value:
                attrs[key] = value
        attributes.append(attrs)
    users = users_frame(ids[keep], [a for a, k in zip(attributes, keep, strict=True) if k])
    return users.drop_duplicates("user_id", keep="last").reset_index(drop=True), errors
