"""Evaluation of frozen representations: linear probe, kNN, k-means and local-feature scores."""

from cl_properties.evaluation.dense import (
    ari_scores,
    dense_probe,
    downsample_masks,
    kmeans_ari,
)
from cl_properties.evaluation.features import extract_features
from cl_properties.evaluation.kmeans import KMeansResult, cluster_maps, kmeans, kmeans_batch
from cl_properties.evaluation.knn import knn_accuracy, knn_predict
from cl_properties.evaluation.linear import LinearEvalResult, linear_eval, linear_eval_augmented

__all__ = [
    "KMeansResult",
    "LinearEvalResult",
    "ari_scores",
    "cluster_maps",
    "dense_probe",
    "downsample_masks",
    "extract_features",
    "kmeans",
    "kmeans_ari",
    "kmeans_batch",
    "knn_accuracy",
    "knn_predict",
    "linear_eval",
    "linear_eval_augmented",
]
