"""Data engineering: the medallion store, features and sampling."""

from mlfactory.data._features import compute_features, feature_columns

__all__ = [
    "compute_features",
    "feature_columns",
]
