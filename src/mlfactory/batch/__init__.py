"""Batch scoring: a registered model over a parquet/CSV file or a SQL query, out of core."""

from mlfactory.batch._batch import LOCAL_SCHEDULERS, BatchReport, ProgressCallback, batch_predict
from mlfactory.batch._score import check_columns, output_columns, score_partition
from mlfactory.batch._sinks import ParquetSink, SqlSink

__all__ = [
    "LOCAL_SCHEDULERS",
    "BatchReport",
    "ParquetSink",
    "ProgressCallback",
    "SqlSink",
    "batch_predict",
    "check_columns",
    "output_columns",
    "score_partition",
]
