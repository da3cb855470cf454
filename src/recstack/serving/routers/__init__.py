"""recstack.serving.routers."""
