"""Loaders turning MovieLens, Amazon Reviews and a user's own files into canonical frames.

Every loader returns ``LoadedData`` (interactions, items, users in the shape of
``recstack.data.schema``) and reports bad rows as ``DataError`` with file, line and reason:
``on_error="fail"`` raises the first one, ``on_error="skip"`` drops them and lists them.
"""

from recstack.data.loaders.amazon import load_amazon
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.movielens import load_movielens
from recstack.data.loaders.result import LoadedData, OnError
from recstack.data.loaders.tabular import load_interactions, load_items, load_users

__all__ = [
    "ColumnMapping",
    "LoadedData",
    "OnError",
    "load_amazon",
    "load_interactions",
    "load_items",
    "load_movielens",
    "load_users",
]
