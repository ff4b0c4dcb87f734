"""Dashboard defaults, importable without the web stack (the CLI shows them in --help)."""

DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"
