"""Batch scoring: a registered model over a parquet/CSV file or a SQL query, out of core."""

from mlfactory.batch._batch import LOCAL_SCHEDULERS, BatchReport, ProgressCallback, batch_predict
from mlfactory.batch._score import check_columns, output_columns, score_partition
from mlfactory.batch._sinks import MARKER, ParquetSink, Refused, SqlSink
from mlfactory.batch._sql import check_query

__all__ = [
    "LOCAL_SCHEDULERS",
    "MARKER",
    "BatchReport",
    "ParquetSink",
    "ProgressCallback",
    "Refused",
    "SqlSink",
    "batch_predict",
    "check_columns",
    "check_query",
    "output_columns",
    "score_partition",
]
