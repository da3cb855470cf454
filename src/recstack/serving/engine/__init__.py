"""In-memory serving state and scoring: model slots over one catalogue and one history store.

No HTTP and no SQL here: the runtime feeds it snapshots and changes, the API layer calls it.
"""

from recstack.serving.engine.core import DEFAULT_SLOT, Engine
from recstack.serving.engine.results import ModelInfo, Recommendations, ScoredItem

__all__ = ["DEFAULT_SLOT", "Engine", "ModelInfo", "Recommendations", "ScoredItem"]
