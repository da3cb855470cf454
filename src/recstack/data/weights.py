"""How raw events become the weights of the user x item matrix models train on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "start": 2.0,
    "bookmark": 2.0,
    "complete": 4.0,
    "purchase": 4.0,
    "rate": 1.0,
}


SMALL_LIST = 10_000  # events weighted in Python up to this many, pandas above


@dataclass(frozen=True)
class EventWeighting:
    """Weight of one event: ``type_weight[event_type]``, times its value for valued events.

    ``use_value`` lists the event types whose ``value`` multiplies the weight (a rating of 4 weighs
    4x a rating of 1). ``min_value`` drops valued events below it (e.g. ratings < 3.5 treated as
    not-liked). Unknown event types weigh ``default_weight``. Repeated (user, item) pairs are
    summed in the matrix.

    >>> w = EventWeighting()
    >>> w.weights(pd.Series(["view", "rate", "complete"]), pd.Series([np.nan, 3.0, np.nan])).tolist()
    [1.0, 3.0, 4.0]
    """

    type_weight: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    use_value: tuple[str, ...] = ("rate",)
    min_value: float | None = None
    default_weight: float = 1.0

    def weight_list(self, event_types: list[str], values: list[float | None]) -> np.ndarray:
        """``weights`` for a few events given as lists (a live API post): the same rule per
        event in Python, far cheaper than building pandas Series; large lists go to
        ``weights``.

        >>> EventWeighting(min_value=3.0).weight_list(["view", "rate", "rate"], [None, 4.0, 2.0]).tolist()
        [1.0, 4.0, nan]
        """
        if len(event_types) > SMALL_LIST:
            value = pd.Series([np.nan if v is None else v for v in values], dtype=np.float64)
            return self.weights(pd.Series(event_types, dtype=object), value)
        out = np.empty(len(event_types), dtype=np.float32)
        type_weight, default, use_value, floor = (
            self.type_weight,
            self.default_weight,
            self.use_value,
            self.min_value,
        )
        for i, (kind, value) in enumerate(zip(event_types, values, strict=True)):
            weight = type_weight.get(kind, default)
            if kind in use_value and value is not None and value == value:
                weight = float("nan") if floor is not None and value < floor else weight * value
            out[i] = weight
        return out

    def weights(self, event_type: pd.Series, value: pd.Series) -> np.ndarray:
        """Per-event weights (float32); NaN for events to drop (below ``min_value``)."""
        et = event_type.astype("category")
        base = et.map(lambda t: self.type_weight.get(t, self.default_weight)).astype(np.float32)
        w = base.to_numpy(dtype=np.float32, copy=True)
        valued = event_type.isin(self.use_value).to_numpy()
        if valued.any():
            v = value.to_numpy(dtype=np.float64)[valued]
            vw = np.where(np.isnan(v), 1.0, v).astype(np.float32)
            if self.min_value is not None:
                vw = np.where(np.isnan(v) | (v >= self.min_value), vw, np.nan).astype(np.float32)
            w[valued] = w[valued] * vw
        return w
