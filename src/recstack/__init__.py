"""recstack: ingest interactions, train and evaluate recommenders, serve them over HTTP."""

__version__ = "0.1.0"
