"""Offline evaluation: metrics (pure array functions), the split-train-score protocol, reports."""

from recstack.evaluation.protocol import EvaluationResult, ModelResult, evaluate_models

__all__ = ["EvaluationResult", "ModelResult", "evaluate_models"]
