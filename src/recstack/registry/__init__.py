"""Model registry: MLflow runs, registered versions, aliases (champion, challenger) and loading."""

from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo

__all__ = ["ModelRegistry", "VersionInfo"]
