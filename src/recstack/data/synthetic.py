"""A synthetic e-learning platform: courses, learners and their view/start/complete funnel.

Courses belong to a topic and a difficulty (1-3) and carry generated titles ("Intermediate
Statistics: Bayesian Inference 3") and descriptions, so content models have text to embed.
Learners have topic interests (a sparse Dirichlet draw) and a skill level. Each learner picks
courses mostly from their interest topics at difficulties near their skill, weighted by a
power-law course popularity, and sometimes by popularity alone. That planted structure is what
a collaborative model can learn and a popularity ranking cannot. Each picked course yields a
view, and with probabilities rising with interest and skill match, a bookmark, a start, a
completion and a 1-5 rating.

Everything is drawn with numpy over whole arrays (no loop per event) from one seeded generator,
so a seed always gives the same data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recstack.data.loaders.progress import step_progress
from recstack.data.loaders.result import LoadedData, interactions_frame, items_frame, users_frame
from recstack.data.loaders.writer import write_loaded

__all__ = ["TOPICS", "generate_synthetic", "write_loaded"]

TOPICS: dict[str, tuple[str, ...]] = {
    "python": ("Data Structures", "Web Scraping", "Testing", "Async Programming",
               "Packaging", "Decorators", "Type Hints", "Automation"),
    "statistics": ("Bayesian Inference", "Hypothesis Testing", "Regression", "Probability",
                   "Sampling", "Time Series", "Experimental Design", "Survival Analysis"),
    "machine learning": ("Decision Trees", "Neural Networks", "Clustering",
                         "Feature Engineering", "Model Evaluation", "Gradient Boosting",
                         "Recommender Systems", "Reinforcement Learning"),
    "design": ("Typography", "Color Theory", "Layout", "User Research", "Prototyping",
               "Accessibility", "Design Systems", "Illustration"),
    "javascript": ("DOM Basics", "React", "Node.js", "TypeScript", "Testing Frontends",
                   "Animations", "Build Tools", "Web APIs"),
    "databases": ("SQL Joins", "Indexing", "Transactions", "Data Modeling", "PostgreSQL",
                  "Document Stores", "Query Tuning", "Replication"),
    "cloud": ("Containers", "Kubernetes", "Serverless", "Cloud Networking",
              "Infrastructure as Code", "Observability", "Cost Control", "Storage"),
    "security": ("Cryptography", "Web Security", "Threat Modeling", "Penetration Testing",
                 "Identity", "Incident Response", "Network Defense", "Secure Coding"),
    "marketing": ("Search Optimization", "Content Strategy", "Email Campaigns",
                  "Marketing Analytics", "Branding", "Social Media", "Growth", "Copywriting"),
    "finance": ("Accounting", "Valuation", "Budgeting", "Investing", "Corporate Finance",
                "Risk Management", "Financial Modeling", "Personal Finance"),
    "management": ("Leadership", "Agile Teams", "Hiring", "Feedback", "Roadmaps", "Goal Setting",
                   "Negotiation", "Remote Teams"),
    "writing": ("Storytelling", "Technical Writing", "Editing", "Poetry", "Screenwriting",
                "Grammar", "Essays", "Blogging"),
    "photography": ("Composition", "Lighting", "Portraits", "Photo Editing", "Landscapes",
                    "Street Photography", "Film Cameras", "Studio Work"),
    "music": ("Music Theory", "Guitar", "Piano", "Songwriting", "Mixing", "Ear Training",
              "Rhythm", "Music Production"),
    "languages": ("Spanish Grammar", "French Conversation", "German Vocabulary",
                  "Japanese Kana", "Mandarin Tones", "Italian Phrases", "Pronunciation",
                  "Reading Fluency"),
    "mathematics": ("Linear Algebra", "Calculus", "Discrete Math", "Number Theory",
                    "Optimization", "Geometry", "Proofs", "Differential Equations"),
    "data engineering": ("ETL Pipelines", "Spark", "Stream Processing", "Data Warehousing",
                         "Orchestration", "Data Quality", "Lakehouses", "Batch Jobs"),
    "mobile": ("Android", "iOS", "Flutter", "React Native", "App Design", "Offline Sync",
               "Push Notifications", "App Publishing"),
    "health": ("Nutrition", "Sleep", "Fitness", "Mindfulness", "First Aid", "Yoga", "Running",
               "Stress Management"),
    "history": ("Ancient Rome", "World War II", "The Renaissance", "The Cold War",
                "Industrial Revolution", "Ancient Egypt", "Medieval Europe", "The Silk Road"),
}  # fmt: skip
LEVELS = ("beginner", "intermediate", "advanced")
# description templates per difficulty, as the literal text around: subtopic, topic, k1, k2, k3
DESCRIPTIONS = (
    ("A gentle introduction to ", " in ", ". No experience needed: you practise ", ", ",
     " and ", " step by step."),
    ("", " for ", " learners who know the basics. Covers ", ", ", " and ",
     " through hands-on projects."),
    ("An in-depth course on ", " for experienced ", " learners, with case studies on ", ", ",
     " and ", "."),
)  # fmt: skip
EVENT_NAMES = ("view", "bookmark", "start", "complete", "rate")
DURATIONS = np.array([15, 30, 45, 60, 90, 120, 180, 240, 360, 480])
# P(course difficulty | learner skill): learners mostly pick their own level
DIFFICULTY_GIVEN_SKILL = np.array([[0.65, 0.28, 0.07], [0.2, 0.6, 0.2], [0.07, 0.28, 0.65]])
POPULARITY_EXPONENT = 0.8  # course weight ~ rank ** -exponent
POPULARITY_ONLY_SHARE = 0.1  # picks made by popularity alone, ignoring interests
SERIES_SHARE = 0.4  # picks made within the learner's favourite series of the topic
INTEREST_CONCENTRATION = 0.5  # Dirichlet mass: small -> learners care about few topics
START_TIME = 1_672_531_200  # 2023-01-01 UTC
SPAN_SECONDS = 2 * 365 * 86_400
DAY = 86_400.0


def generate_synthetic(
    n_users: int, n_items: int, n_events: int, seed: int = 0, progress: bool = False
) -> LoadedData:
    """Generate an e-learning dataset with exactly ``n_events`` events.

    Returns interactions (``view``, ``bookmark``, ``start``, ``complete``, ``rate`` with a 1-5
    value; ids ``s{seed}-{n}`` in time order), courses ``c0..`` with title, description and
    attributes (topic, subtopic, difficulty, level, duration_minutes, genres) and learners
    ``u0..`` with attributes (skill_level, top_topic, interests).

    Raises:
        ValueError: sizes that cannot hold the events (fewer than 3 courses, or more events
            than the learner x course pairs can carry).
    """
    if n_users < 1 or n_items < 3 or n_events < 0:
        raise ValueError("need n_users >= 1, n_items >= 3 and n_events >= 0")
    if n_events > n_users * n_items:
        raise ValueError(
            f"{n_events} events do not fit {n_users} learners x {n_items} courses; "
            "allow at most one event per learner-course pair on average"
        )
    rng = np.random.default_rng(seed)
    with step_progress("generating synthetic data", 5, progress) as steps:
        courses = _catalogue(rng, n_items)
        learners = _learners(rng, n_users, courses["n_topics"], courses["n_subtopics"])
        steps.advance("sampling learner-course pairs")
        users, items, flags, values = _engagements(rng, courses, learners, n_events)
        steps.advance("timing events")
        user_idx, item_idx, kinds, value, ts = _events(
            rng, learners, courses, users, items, flags, values, n_events
        )
        steps.advance("sorting by time")
        order = np.argsort(ts, kind="stable")
        user_idx, item_idx, kinds, value, ts = (
            a[order] for a in (user_idx, item_idx, kinds, value, ts)
        )
        steps.advance("building frames")
        interactions = interactions_frame(
            _prefixed(f"s{seed}-", np.arange(len(ts))),
            pc.take(_prefixed("u", np.arange(n_users)), pa.array(user_idx)),
            pc.take(_prefixed("c", np.arange(n_items)), pa.array(item_idx)),
            pc.take(pa.array(EVENT_NAMES, type=pa.large_string()), pa.array(kinds)),
            value,
            ts,
        )
        result = LoadedData(
            interactions,
            _items_frame(courses),
            _users_frame(learners, courses["topic_names"]),
            source=f"synthetic(n_users={n_users}, n_items={n_items}, n_events={n_events}, "
            f"seed={seed})",
        )
    return result


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    """Ids like ``u17`` built in Arrow, without a Python loop."""
    digits = pc.cast(pa.array(numbers, type=pa.int64()), pa.large_string())
    text = pa.large_string()  # the layout pandas' str dtype uses: no conversion later
    return pc.binary_join_element_wise(pa.scalar(prefix, text), digits, pa.scalar("", text))


def _catalogue(rng: np.random.Generator, n_items: int) -> dict[str, Any]:
    n_topics = int(min(len(TOPICS), max(1, n_items // 6)))
    n_buckets = n_topics * 3
    bucket = rng.permutation(np.arange(n_items) % n_buckets)  # every (topic, level) filled
    topic, difficulty = bucket // 3, bucket % 3
    n_sub = len(next(iter(TOPICS.values())))
    subtopic = rng.integers(0, n_sub, n_items)
    weight = (rng.permutation(n_items) + 1.0) ** -POPULARITY_EXPONENT
    duration = DURATIONS[
        np.clip(rng.binomial(len(DURATIONS) - 1, 0.25 + 0.2 * difficulty), 0, len(DURATIONS) - 1)
    ]
    return {
        "n_topics": n_topics,
        "topic_names": list(TOPICS)[:n_topics],
        "topic": topic,
        "subtopic": subtopic,
        "difficulty": difficulty,
        "bucket": bucket,
        "weight": weight,
        "quality": rng.beta(4.0, 2.0, n_items),
        "duration": duration,
        "n_subtopics": n_sub,
        "keywords": (
            subtopic[:, None] + 1 + np.argsort(rng.random((n_items, n_sub - 1)), axis=1)[:, :3]
        )
        % n_sub,
    }


def _learners(
    rng: np.random.Generator, n_users: int, n_topics: int, n_subtopics: int
) -> dict[str, np.ndarray]:
    base = 1.0 / np.sqrt(np.arange(1, n_topics + 1))  # some topics are more popular
    interests = rng.dirichlet(INTEREST_CONCENTRATION * base / base.sum(), n_users)
    joined = START_TIME + rng.uniform(0.0, 0.85, n_users) * SPAN_SECONDS
    return {
        "interests": interests,
        "top_interest": interests.max(axis=1),
        "favourite": rng.integers(0, n_subtopics, (n_users, n_topics), dtype=np.int64),
        "skill": rng.choice(3, n_users, p=[0.45, 0.35, 0.2]),
        "activity": rng.lognormal(0.0, 0.9, n_users),
        "joined": joined,
        "active_for": rng.uniform(0.05, 1.0, n_users) * (START_TIME + SPAN_SECONDS - joined),
    }


def _engagements(
    rng: np.random.Generator, courses: dict, learners: dict, n_events: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (learner, course) pairs with their funnel flags, enough for ``n_events``."""
    n_users, n_items = len(learners["skill"]), len(courses["topic"])
    keys = np.zeros(0, dtype=np.int64)
    users_parts, items_parts = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    flag_parts, value_parts = [np.zeros((0, len(EVENT_NAMES)), bool)], [np.zeros(0)]
    total, per_pair, fresh_share, first = 0, 1.8, 1.0, True
    for _ in range(40):
        if total >= n_events:
            break
        wanted = int((n_events - total) / per_pair / fresh_share * 1.1) + 16
        users = _allocate(rng, learners["activity"], wanted, first)
        first = False
        items = _pick_courses(rng, courses, learners, users)
        new = _sorted_unique(users.astype(np.int64) * n_items + items)
        if len(keys):
            new = new[~np.isin(new, keys, assume_unique=True, kind="sort")]
            keys = _sorted_unique(np.concatenate([keys, new]))
        else:
            keys = new
        fresh_share = max(len(new) / wanted, 0.02)
        users, items = (new // n_items).astype(np.int32), (new % n_items).astype(np.int32)
        flags, values = _funnel(rng, courses, learners, users, items)
        users_parts.append(users)
        items_parts.append(items)
        flag_parts.append(flags)
        value_parts.append(values)
        count = int(flags.sum())
        total += count
        per_pair = max(count / max(len(users), 1), 1.0)
    if total < n_events:
        raise ValueError(
            f"could not place {n_events} events on {n_users} learners x {n_items} courses; "
            "use fewer events or more learners/courses"
        )
    parts = (users_parts, items_parts, flag_parts, value_parts)
    users, items, flags, ratings = (np.concatenate(p) for p in parts)
    return users, items, flags, ratings


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values in ascending order (a sort, faster here than numpy's hashing unique)."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _allocate(rng: np.random.Generator, activity: np.ndarray, n: int, first: bool) -> np.ndarray:
    """Learner of each of ``n`` picks: proportional to activity, everyone at least once first."""
    p = activity / activity.sum()
    base = 1 if first and n >= len(activity) else 0
    counts = rng.multinomial(n - base * len(activity), p) + base
    return np.repeat(np.arange(len(activity), dtype=np.int32), counts)


def _pick_courses(
    rng: np.random.Generator, courses: dict, learners: dict, users: np.ndarray
) -> np.ndarray:
    """One course per pick: a topic from the learner's interests, a difficulty near their skill,
    often their favourite series (subtopic) of that topic, then a course by popularity. Some
    picks follow popularity alone."""
    n = len(users)
    n_topics = courses["n_topics"]
    cum_interest = np.cumsum(learners["interests"], axis=1)
    cum_interest[:, -1] = 1.0
    flat = (cum_interest + np.arange(len(cum_interest))[:, None]).ravel()
    topic = np.searchsorted(flat, users + rng.random(n), side="right") - users * n_topics
    topic = np.clip(topic, 0, n_topics - 1)
    cum_level = np.cumsum(DIFFICULTY_GIVEN_SKILL, axis=1)
    skill, r = learners["skill"][users], rng.random(n)
    level = (r > cum_level[skill, 0]).astype(np.int64) + (r > cum_level[skill, 1])
    bucket = topic * 3 + level
    picked, _ = _pick_in_groups(rng, courses["bucket"], courses["weight"], bucket)
    in_series = np.flatnonzero(rng.random(n) < SERIES_SHARE)
    n_sub = courses["n_subtopics"]
    series = bucket[in_series] * n_sub + learners["favourite"][users[in_series], topic[in_series]]
    series_pick, found = _pick_in_groups(
        rng, courses["bucket"] * n_sub + courses["subtopic"], courses["weight"], series
    )
    picked[in_series[found]] = series_pick[found]
    by_popularity = np.flatnonzero(rng.random(n) < POPULARITY_ONLY_SHARE)
    everything = np.zeros(len(courses["weight"]), dtype=np.int64)
    picked[by_popularity], _ = _pick_in_groups(
        rng, everything, courses["weight"], np.zeros(len(by_popularity), dtype=np.int64)
    )
    return picked


def _pick_in_groups(
    rng: np.random.Generator, group: np.ndarray, weight: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of ``wanted`` (a group id), a course of that group drawn by ``weight``.

    One sorted cumulative array holds every group's distribution shifted by its group id, so
    all draws are a single ``searchsorted``. Returns the courses and whether the group had any
    course (entries for empty groups are meaningless).
    """
    n_groups = int(max(group.max(initial=0), wanted.max(initial=0))) + 1
    order = np.argsort(group, kind="stable")
    sorted_group, w = group[order], weight[order]
    counts = np.bincount(sorted_group, minlength=n_groups)
    ends = np.cumsum(counts)
    cum = np.cumsum(w)
    before = np.concatenate([[0.0], cum])[ends - counts]
    totals = np.bincount(sorted_group, weights=w, minlength=n_groups)
    within = (cum - before[sorted_group]) / totals[sorted_group]
    within[ends[counts > 0] - 1] = 1.0
    position = np.searchsorted(within + sorted_group, wanted + rng.random(len(wanted)), "right")
    return order[np.minimum(position, len(order) - 1)], counts[wanted] > 0


def _funnel(
    rng: np.random.Generator, courses: dict, learners: dict, users: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which of view/bookmark/start/complete/rate each pair produces, and its rating."""
    interests = learners["interests"]
    affinity = interests[users, courses["topic"][items]] / learners["top_interest"][users]
    match = 1.0 - 0.35 * np.abs(learners["skill"][users] - courses["difficulty"][items])
    duration_factor = np.interp(courses["duration"][items], [15, 480], [1.1, 0.7])
    n = len(users)
    draws = rng.random((n, 4))
    bookmark = draws[:, 0] < 0.04 + 0.12 * affinity
    start = draws[:, 1] < 0.15 + 0.6 * affinity * match
    complete = start & (draws[:, 2] < np.clip((0.3 + 0.55 * match) * duration_factor, 0, 0.95))
    rate = complete & (draws[:, 3] < 0.55)
    score = 0.45 * affinity * match + 0.45 * courses["quality"][items] + 0.1
    rating = np.clip(np.rint(1.0 + 4.0 * (score + rng.normal(0.0, 0.12, n))), 1, 5)
    flags = np.column_stack([np.ones(n, dtype=bool), bookmark, start, complete, rate])
    return flags, rating


def _events(
    rng: np.random.Generator,
    learners: dict,
    courses: dict,
    users: np.ndarray,
    items: np.ndarray,
    flags: np.ndarray,
    ratings: np.ndarray,
    n_events: int,
) -> tuple[np.ndarray, ...]:
    """Flatten pairs (in random order) into exactly ``n_events`` timed events."""
    order = rng.permutation(len(users))
    pair, kind = np.nonzero(flags[order])
    pair, kind = order[pair[:n_events]], kind[:n_events].astype(np.int8)
    n_pairs = len(users)
    seen = (
        learners["joined"][users] + rng.uniform(0.0, 1.0, n_pairs) * learners["active_for"][users]
    )
    bookmarked = seen + rng.uniform(5.0, 600.0, n_pairs)
    started = seen + 60.0 + rng.exponential(DAY, n_pairs)
    minutes = courses["duration"][items] * 60.0
    completed = (
        started + minutes * rng.uniform(1.0, 3.0, n_pairs) + rng.exponential(2 * DAY, n_pairs)
    )
    rated = completed + rng.uniform(30.0, 3600.0, n_pairs)
    times = seen[pair]
    for k, when in enumerate((bookmarked, started, completed, rated), start=1):
        chosen = kind == k
        times[chosen] = when[pair[chosen]]
    ts = times.astype(np.int64)
    value = np.where(kind == 4, ratings[pair], np.nan)
    return users[pair], items[pair], kind, value, ts


def _items_frame(courses: dict) -> pd.DataFrame:
    """Courses with titles like "Intermediate Statistics: Bayesian Inference 3" and
    descriptions from per-difficulty templates, built column by column."""
    names = courses["topic_names"]
    topic, level, n_sub = courses["topic"], courses["difficulty"], courses["n_subtopics"]
    sub_names = np.asarray([s for t in names for s in TOPICS[t]], dtype=object)
    subtopic = _text(sub_names[topic * n_sub + courses["subtopic"]])
    topic_name = _text(np.asarray(names, dtype=object)[topic])
    level_name = _text(np.asarray(LEVELS, dtype=object)[level])
    part = pd.Series(topic).groupby([topic, courses["subtopic"], level]).cumcount() + 1
    titles = (
        level_name.str.capitalize() + " " + topic_name.str.title() + ": " + subtopic + " "
    ) + part.astype("str")
    literal = [
        _text(np.asarray([d[j] for d in DESCRIPTIONS], dtype=object)[level]) for j in range(6)
    ]
    keyword = [
        _text(sub_names[topic * n_sub + courses["keywords"][:, j]]).str.lower() for j in range(3)
    ]
    texts = literal[0] + subtopic + literal[1] + topic_name + literal[2] + keyword[0]
    texts = texts + literal[3] + keyword[1] + literal[4] + keyword[2] + literal[5]
    texts = texts + " About " + _text(courses["duration"].astype(str)) + " minutes."
    columns = zip(
        topic_name.tolist(),
        subtopic.tolist(),
        level.tolist(),
        courses["duration"].tolist(),
        strict=True,
    )
    attributes = [
        {
            "topic": t,
            "subtopic": s,
            "difficulty": d + 1,
            "level": LEVELS[d],
            "duration_minutes": minutes,
            "genres": [t],
        }
        for t, s, d, minutes in columns
    ]
    return items_frame(_prefixed("c", np.arange(len(topic))), titles, texts, attributes)


def _text(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")


def _users_frame(learners: dict, topic_names: list[str]) -> pd.DataFrame:
    """Learners with their skill level, top topic and up to three topics they care about
    (interest >= 0.15); each distinct topic list is built once, not once per learner."""
    interests = learners["interests"]
    ranked = np.argsort(-interests, axis=1)[:, :3]
    liked = np.take_along_axis(interests, ranked, 1) >= 0.15
    liked[:, 0] = True
    k, n_topics = ranked.shape[1], interests.shape[1]
    code = (ranked * n_topics ** np.arange(k)).sum(axis=1) * 2**k + liked @ 2 ** np.arange(k)
    _, first, which = np.unique(code, return_index=True, return_inverse=True)
    topic_lists = [
        [topic_names[t] for t, keep in zip(ranked[u], liked[u], strict=True) if keep]
        for u in first.tolist()
    ]
    columns = zip(learners["skill"].tolist(), ranked[:, 0].tolist(), which.tolist(), strict=True)
    attributes = [
        {
            "skill_level": LEVELS[skill],
            "top_topic": topic_names[top],
            "interests": list(topic_lists[combo]),
        }
        for skill, top, combo in columns
    ]
    return users_frame(_prefixed("u", np.arange(len(attributes))), attributes)
