"""The time windows drift and retraining compare, from the data a model was trained on.

A model version records the first and last event time of its training data (``window_start``,
``window_end``, epoch seconds); that span is the drift *reference*, and the events after it are
the *current* window, the ones the model has never seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DAY = 86_400


def data_window(timestamps: np.ndarray) -> dict[str, int]:
    """``{"window_start", "window_end"}`` of a training set's event times (empty: nothing).

    >>> data_window(np.array([30, 10, 20]))
    {'window_start': 10, 'window_end': 30}
    >>> data_window(np.array([], dtype=np.int64))
    {}
    """
    ts = np.asarray(timestamps)
    if not ts.size:
        return {}
    return {"window_start": int(ts.min()), "window_end": int(ts.max())}


def window_from_tags(tags: dict[str, Any]) -> tuple[int, int] | None:
    """The training window a version's run tags record, or None when it recorded none.

    >>> window_from_tags({"recstack.data.window_start": "10", "recstack.data.window_end": "30"})
    (10, 30)
    >>> window_from_tags({}) is None
    True
    """
    start = tags.get("recstack.data.window_start")
    end = tags.get("recstack.data.window_end")
    if start in (None, "") or end in (None, ""):
        return None
    return int(float(start)), int(float(end))


def reference_bounds(start: int, end: int, days: float | None) -> tuple[int, int]:
    """The reference span: the whole training window, or only its last ``days``.

    >>> reference_bounds(0, 10 * DAY, None)
    (0, 864000)
    >>> reference_bounds(0, 10 * DAY, 2)
    (691200, 864000)
    """
    if days is None:
        return start, end
    return max(start, end - int(days * DAY)), end


def current_bounds(reference_end: int, latest: int, days: float | None) -> tuple[int, int]:
    """The current span: after the reference up to the latest event, or its last ``days``.

    Bounds are inclusive; the current window starts one second after the reference ends.

    >>> current_bounds(100, 1000, None)
    (101, 1000)
    >>> current_bounds(0, 10 * DAY, 1)
    (777600, 864000)
    """
    start = reference_end + 1
    if days is not None:
        start = max(start, latest - int(days * DAY))
    return start, latest
