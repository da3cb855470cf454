"""The shared progress helpers: silent when off, nestable when on."""

from __future__ import annotations

import doctest

import recstack.progress
from recstack.progress import ProgressTask, track


def test_track_yields_everything_on_and_off() -> None:
    assert list(track(range(5), "off", enabled=False)) == [0, 1, 2, 3, 4]
    assert list(track(range(5), "on", enabled=True)) == [0, 1, 2, 3, 4]


def test_nested_tasks_share_one_display() -> None:
    with ProgressTask("outer", total=2) as outer:
        with ProgressTask("inner", total=3) as inner:
            inner.advance(3)
            assert inner._progress is outer._progress  # one live display, two bars
        outer.advance(2)
    assert recstack.progress._shared is None  # stopped by its last user


def test_doctests() -> None:
    assert doctest.testmod(recstack.progress).failed == 0
