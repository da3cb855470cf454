"""recstack.testing."""
