"""BPRRecommender against the shared model contract."""

from recstack.models.bpr import BPRRecommender
from recstack.testing.contract import RecommenderContract


class TestBPRContract(RecommenderContract):
    # one thread: multi-threaded SGD is order-dependent, and the contract checks refits match
    model_factory = staticmethod(lambda: BPRRecommender(factors=16, num_threads=1, random_state=0))
