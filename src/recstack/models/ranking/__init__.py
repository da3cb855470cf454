"""The ranking stage: candidates from several retrievers, features, a LightGBM reranker."""
