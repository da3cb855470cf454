"""recstack.registry."""
