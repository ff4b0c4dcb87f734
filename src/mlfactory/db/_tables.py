"""mlfactory's own tables, declared once; the Alembic revisions in ``migrations/`` move them.

Writers import the table objects from here; nothing calls ``create_all``: the schema moves only
by migrations (:func:`mlfactory.db.upgrade_schema`), in their own version table
(``mlfactory_alembic_version``) so they never touch MLflow's ``alembic_version``.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "CV_FOLD_RESULTS",
    "DRIFT_REPORTS",
    "LINE_LOCKS",
    "LINE_STAGE_RECORDS",
    "METADATA",
    "PREDICTION_REQUESTS",
    "PROMOTION_DECISIONS",
    "SEGMENT_RESULTS",
    "TUNING_RESULTS",
]

METADATA = sa.MetaData()
_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

CV_FOLD_RESULTS = sa.Table(
    "cv_fold_results",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("experiment", sa.String(256), nullable=False),
    sa.Column("cell", sa.String(256), nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),
    sa.Column("fold", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("train_score", sa.Float, nullable=True),
    sa.Column("test_score", sa.Float, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

TUNING_RESULTS = sa.Table(
    "tuning_results",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("child_run_id", sa.String(64), nullable=True),
    sa.Column("experiment", sa.String(256), nullable=False),
    sa.Column("cell", sa.String(256), nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("mean_test_score", sa.Float, nullable=True),
    sa.Column("std_test_score", sa.Float, nullable=True),
    sa.Column("mean_train_score", sa.Float, nullable=True),
    sa.Column("std_train_score", sa.Float, nullable=True),
    sa.Column("rank", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("mean_fit_time", sa.Float, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

PREDICTION_REQUESTS = sa.Table(
    "prediction_requests",
    METADATA,
    sa.Column("id", _BIG_ID, primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("records", sa.Integer, nullable=False),  # records scored in the request
    sa.Column("inputs", sa.JSON, nullable=False),  # {feature: [value per record]}
    sa.Column("predictions", sa.JSON, nullable=False),  # [class label or value per record]
    sa.Column("probabilities", sa.JSON, nullable=True),  # {class: [probability per record]}
    sa.Column("latency_ms", sa.Float, nullable=True),  # time in the model for the request
)

DRIFT_REPORTS = sa.Table(
    "drift_reports",
    METADATA,
    sa.Column("id", _BIG_ID, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model", sa.String(256), nullable=True, index=True),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("current", sa.Text, nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("share_drifted", sa.Float, nullable=False),
    sa.Column("n_features", sa.Integer, nullable=False),
    sa.Column("n_drifted", sa.Integer, nullable=False),
    sa.Column("n_reference", sa.Integer, nullable=False),
    sa.Column("n_current", sa.Integer, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),  # per-feature stats, config, reasons
)

LINE_STAGE_RECORDS = sa.Table(  # one row per stage execution of a line (mlfactory run)
    "line_stage_records",
    METADATA,
    sa.Column("id", _BIG_ID, primary_key=True),
    sa.Column("line", sa.String(256), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | finished | failed
    sa.Column("key_parts", sa.JSON, nullable=False),  # config, inputs, versions: the key's text
    sa.Column("outputs", sa.JSON, nullable=True),  # what later stages take as inputs
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("line_run_id", sa.String(64), nullable=True),  # the line's MLflow parent run
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_line_stage_records_line_stage", "line", "stage", "id"),
)

LINE_LOCKS = sa.Table(  # at most one row per line: the run holding it
    "line_locks",
    METADATA,
    sa.Column("line", sa.String(256), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),  # host:pid
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)

PROMOTION_DECISIONS = sa.Table(  # the gate's verdicts, every rule's values and the reason
    "promotion_decisions",
    METADATA,
    sa.Column("id", _BIG_ID, primary_key=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model", sa.String(256), nullable=False, index=True),
    sa.Column("version", sa.String(32), nullable=False),  # the challenger
    sa.Column("champion_version", sa.String(32), nullable=True),  # None: no champion
    sa.Column("line", sa.String(256), nullable=True),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("force_reason", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("heldout_sha256", sa.String(64), nullable=False),
    sa.Column("heldout_rows", sa.Integer, nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),  # [{rule, metric, values, passed, reason}]
)

SEGMENT_RESULTS = sa.Table(  # one row per segment of a fleet training (and one for its fallback)
    "segment_results",
    METADATA,
    sa.Column("id", _BIG_ID, primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),  # the fleet's MLflow parent run
    sa.Column("experiment", sa.String(256), nullable=False),
    sa.Column("segment", sa.String(512), nullable=False),  # key; __fallback__: the global model
    sa.Column("segment_values", sa.JSON, nullable=False),  # the by-columns' values
    sa.Column("status", sa.String(16), nullable=False),  # trained | fallback | failed | regressed
    sa.Column("train_rows", sa.Integer, nullable=False),
    sa.Column("test_rows", sa.Integer, nullable=False),
    sa.Column("best_params", sa.Text, nullable=True),  # JSON
    sa.Column("refit_metric", sa.String(128), nullable=True),
    sa.Column("cv_mean", sa.Float, nullable=True),
    sa.Column("cv_std", sa.Float, nullable=True),
    sa.Column("test_metrics", sa.JSON, nullable=True),  # {metric: value} on the segment's rows
    sa.Column("fallback_test_score", sa.Float, nullable=True),  # the fallback on those rows
    sa.Column("model_file", sa.String(512), nullable=True),
    sa.Column("model_sha256", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("child_run_id", sa.String(64), nullable=True),  # failed or regressed only
    sa.Column("fit_seconds", sa.Float, nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data_sha256", sa.String(64), nullable=True),  # the segment's rows (revision 0005)
    sa.Column("config_sha256", sa.String(64), nullable=True),  # what else its model depends on
    sa.Index("ix_segment_results_run_segment", "run_id", "segment"),
    sa.Index("ix_segment_results_reuse", "experiment", "config_sha256", "data_sha256"),
)
