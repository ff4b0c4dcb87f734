# The mlfactory image: the prediction service by default; any mlfactory command otherwise
# (the dashboard, training, promote, monitor, dask scheduler/worker run from the same image).
#
#   docker build -t mlfactory .
#   docker run --rm -p 127.0.0.1:8080:8080 --env-file .env mlfactory            # serve credit@champion
#   docker run --rm --env-file .env mlfactory models list                       # any command
#
# `mlfactory serve --host 0.0.0.0` refuses to start without MLFACTORY_API_KEY.
# Untested here (no Docker engine on the build machine): see docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFACTORY_HOME=/data/mlfactory \
    MPLCONFIGDIR=/tmp/matplotlib

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mlfactory \
    && mkdir -p /data/mlfactory \
    && chown -R mlfactory:mlfactory /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# s3: s3fs for an object store; boto3 for MLflow's S3 artifact store, left to match the botocore
# aiobotocore pins (pip resolves it so: boto3 1.43.117 with aiobotocore 3.10.0, checked).
RUN pip install ".[postgres,s3]" boto3 && rm -rf /src

USER mlfactory
WORKDIR /data
EXPOSE 8080 8050

ENTRYPOINT ["mlfactory"]
CMD ["serve", "credit@champion", "--host", "0.0.0.0", "--port", "8080"]
