"""recstack.serving.api.routers."""
