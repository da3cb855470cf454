"""recstack.data.loaders."""
