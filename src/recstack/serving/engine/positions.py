"""Where one model's items sit among the engine's item positions.

Every model slot shares one catalogue, whose positions are fixed when the engine is built: the
first slot's model items first, then catalogue items it never saw. A model in another slot
(a challenger trained on other data, an older version) knows a different set of items in a
different order, so each slot carries a ``ModelPositions``: model index -> engine position and
back. The common case — the model's items are exactly the first positions — is kept as plain
slicing (``aligned``), so the first slot pays nothing for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recstack.data.idmap import IdMap


@dataclass(frozen=True)
class ModelPositions:
    """The mapping between a model's item indices and engine positions.

    ``from_model[i]`` is the engine position of model item ``i``; ``to_model[p]`` is the model
    index of engine position ``p`` or -1 (a *cold* item for this model). Both are None when
    the model's items are the first ``n_model`` positions.
    """

    n_model: int
    n_items: int
    from_model: np.ndarray | None = None
    to_model: np.ndarray | None = None

    @classmethod
    def align(cls, model_ids: IdMap, engine_ids: IdMap) -> ModelPositions:
        """Positions of ``model_ids`` among ``engine_ids`` (every model item must be there)."""
        n_model, n_items = len(model_ids), len(engine_ids)
        if n_model <= n_items and np.array_equal(model_ids.ids, engine_ids.ids[:n_model]):
            return cls(n_model, n_items)
        from_model = engine_ids.indices(model_ids.ids).astype(np.int64)
        if (from_model < 0).any():
            raise ValueError("every item of the model must have an engine position")
        to_model = np.full(n_items, -1, dtype=np.int64)
        to_model[from_model] = np.arange(n_model)
        return cls(n_model, n_items, from_model, to_model)

    @property
    def aligned(self) -> bool:
        return self.from_model is None

    def grown(self, n_items: int, position: int = -1) -> ModelPositions:
        """The mapping after the catalogue grew to ``n_items`` and, when ``position >= 0``,
        the model grew by one item sitting at that engine position (a content model)."""
        if position < 0:
            if self.to_model is None:
                return ModelPositions(self.n_model, n_items)
            extra = np.full(n_items - len(self.to_model), -1, dtype=np.int64)
            return ModelPositions(
                self.n_model, n_items, self.from_model, np.concatenate([self.to_model, extra])
            )
        if self.from_model is None and position == self.n_model:
            return ModelPositions(self.n_model + 1, n_items)
        base = np.arange(self.n_model) if self.from_model is None else self.from_model
        return ModelPositions.align_arrays(np.append(base, position), n_items)

    @staticmethod
    def align_arrays(from_model: np.ndarray, n_items: int) -> ModelPositions:
        to_model = np.full(n_items, -1, dtype=np.int64)
        to_model[from_model] = np.arange(len(from_model))
        return ModelPositions(len(from_model), n_items, from_model, to_model)

    def model_mask(self, mask: np.ndarray) -> np.ndarray:
        """An engine-position mask as a mask over the model's items."""
        if self.from_model is None:
            return mask[: self.n_model]
        return mask[self.from_model]

    def to_engine(self, indices: np.ndarray) -> np.ndarray:
        """Model item indices as engine positions."""
        if self.from_model is None:
            return indices
        return self.from_model[indices]

    def engine_position(self, model_index: int) -> int:
        """The engine position of one model item."""
        if self.from_model is None:
            return int(model_index)
        return int(self.from_model[model_index])

    def model_index(self, position: int) -> int:
        """The model's index of one engine position, -1 when the model never saw it."""
        if self.to_model is None:
            return position if position < self.n_model else -1
        return int(self.to_model[position]) if position < len(self.to_model) else -1

    def model_indices(self, positions: np.ndarray) -> np.ndarray:
        """Model indices of engine positions, -1 where the model never saw the item."""
        if self.to_model is None:
            return np.where(positions < self.n_model, positions, -1)
        inside = positions < len(self.to_model)
        out = np.full(len(positions), -1, dtype=np.int64)
        out[inside] = self.to_model[positions[inside]]
        return out

    def warm(self, items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A history (engine positions) restricted to the model's items, as model indices."""
        if self.to_model is None:
            if len(items) and int(items.max()) >= self.n_model:
                keep = items < self.n_model
                return items[keep], weights[keep]
            return items, weights
        indices = self.model_indices(items)
        keep = indices >= 0
        return indices[keep], weights[keep]

    def has_cold(self, n_items: int) -> bool:
        """Whether some catalogue position is one the model cannot score."""
        return n_items > self.n_model

    def cold(self, mask: np.ndarray) -> np.ndarray:
        """Engine positions allowed by ``mask`` that the model cannot score."""
        if self.to_model is None:
            return np.flatnonzero(mask[self.n_model :]) + self.n_model
        n = len(self.to_model)
        cold = np.flatnonzero(mask[:n] & (self.to_model < 0))
        if len(mask) > n:
            cold = np.concatenate([cold, np.flatnonzero(mask[n:]) + n])
        return cold

    def warm_part(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` restricted to the positions the model scores."""
        out = np.zeros_like(mask)
        if self.from_model is None:
            out[: self.n_model] = mask[: self.n_model]
        else:
            out[self.from_model] = mask[self.from_model]
        return out

    def cold_part(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` restricted to the positions the model never saw."""
        out = mask.copy()
        if self.from_model is None:
            out[: self.n_model] = False
        else:
            out[self.from_model] = False
        return out
