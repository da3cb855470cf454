"""recstack.serving."""
