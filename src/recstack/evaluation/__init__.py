"""Offline evaluation: metrics (pure array functions), the split-train-score protocol, reports."""

from recstack.evaluation.protocol import evaluate_models
from recstack.evaluation.results import EvaluationResult, ModelResult

__all__ = ["EvaluationResult", "ModelResult", "evaluate_models"]
