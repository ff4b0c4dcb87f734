"""Data engineering: the medallion store, features and sampling."""

from mlfactory.data._features import compute_features, feature_columns
from mlfactory.data._featurize import FeaturizeReport, TickerResult, featurize

__all__ = [
    "FeaturizeReport",
    "TickerResult",
    "compute_features",
    "feature_columns",
    "featurize",
]
