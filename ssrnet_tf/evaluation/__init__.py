"""Evaluation reports of age models (JSON, Markdown and plots)."""

from ssrnet_tf.evaluation.report import evaluate_predictions, labelled_table, predict_folder

__all__ = ["evaluate_predictions", "labelled_table", "predict_folder"]
