"""Data: the interaction schema, id maps, the frozen Dataset, loaders, synthetic data, splits."""

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap

__all__ = ["Dataset", "IdMap"]
