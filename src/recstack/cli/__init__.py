"""recstack.cli."""
