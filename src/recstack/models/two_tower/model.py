"""The two towers as torch modules.

Both towers end in an L2-normalisation, so a score is the cosine of a user and an item vector;
the training temperature turns cosines into sharp softmax logits, and unit vectors make the
stored item vectors directly usable by an inner-product ANN index.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def mlp(in_dim: int, dim: int) -> nn.Sequential:
    """Two-layer perceptron ``in_dim -> 2*dim -> dim``."""
    return nn.Sequential(nn.Linear(in_dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))


class ItemTower(nn.Module):
    """Item id embedding + mean of categorical feature embeddings + projected text embedding.

    Feature tokens and frozen text embeddings are buffers indexed by item, so the tower is a
    function of item indices alone. Items never seen in training keep a near-zero id embedding
    and are placed by their features and text.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        feature_indices: torch.Tensor | None = None,
        feature_indptr: torch.Tensor | None = None,
        n_tokens: int = 0,
        text: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.id_embedding = nn.Embedding(n_items, dim)
        nn.init.normal_(self.id_embedding.weight, std=0.01)
        parts = 1
        self.use_features = n_tokens > 0 and feature_indices is not None
        if self.use_features:
            self.feature_embedding = nn.EmbeddingBag(n_tokens, dim, mode="mean")
            nn.init.normal_(self.feature_embedding.weight, std=0.1)
            self.register_buffer("feature_indices", feature_indices.long(), persistent=False)
            self.register_buffer("feature_indptr", feature_indptr.long(), persistent=False)
            parts += 1
        self.use_text = text is not None
        if self.use_text:
            self.register_buffer("text", text.float(), persistent=False)
            self.text_projection = nn.Linear(text.shape[1], dim)
            parts += 1
        self.mlp = mlp(parts * dim, dim)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Unit-length ``(len(items), dim)`` vectors."""
        parts = [self.id_embedding(items)]
        if self.use_features:
            starts = self.feature_indptr[items]
            lengths = self.feature_indptr[items + 1] - starts
            offsets = torch.cumsum(lengths, 0) - lengths
            within = torch.arange(int(lengths.sum()), device=items.device)
            within = within - torch.repeat_interleave(offsets, lengths)
            flat = self.feature_indices[torch.repeat_interleave(starts, lengths) + within]
            parts.append(self.feature_embedding(flat, offsets))
        if self.use_text:
            parts.append(self.text_projection(self.text[items]))
        return F.normalize(self.mlp(torch.cat(parts, dim=1)), dim=-1)


class UserTower(nn.Module):
    """User id embedding (row ``n_users`` is the out-of-vocabulary user) + weighted mean of the
    user's history item embeddings.

    Training replaces a share of user ids by the OOV row, so the same tower scores users the
    model never saw from their history alone (fold-in).
    """

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.oov_index = n_users
        self.user_embedding = nn.Embedding(n_users + 1, dim)
        nn.init.normal_(self.user_embedding.weight, std=0.01)
        self.history_embedding = nn.EmbeddingBag(n_items, dim, mode="sum")
        nn.init.normal_(self.history_embedding.weight, std=0.1)
        self.mlp = mlp(2 * dim, dim)

    def forward(
        self,
        users: torch.Tensor,
        history: torch.Tensor,
        history_weights: torch.Tensor,
        offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Unit-length ``(len(users), dim)`` vectors.

        Args:
            users: user indices, ``oov_index`` (or any negative) for unknown users.
            history: ``(n, L)`` item indices, or flat indices with ``offsets``.
            history_weights: same shape as ``history``; each row sums to 1 (or 0 if empty).
            offsets: bag starts into a flat ``history`` (None for the 2-D form).
        """
        users = torch.where(users < 0, torch.full_like(users, self.oov_index), users)
        pooled = self.history_embedding(history, offsets, per_sample_weights=history_weights)
        return F.normalize(self.mlp(torch.cat([self.user_embedding(users), pooled], dim=1)), dim=-1)
