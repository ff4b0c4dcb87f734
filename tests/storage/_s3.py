"""A real S3-compatible server for the tests: moto's ThreadedMotoServer on a loopback port.

Authentication is switched on (``/moto-api/reset-auth``), so a request signed with a wrong key is
refused as it would be by AWS or MinIO: the tests use an IAM access key created on the server,
with a random secret that must never appear in a log, param, tag or report.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass

from _tools import require_tool

REGION = "us-east-1"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str

    def env(self) -> dict[str, str]:
        """What a process needs: the standard AWS variables and mlfactory's endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": REGION,
            "MLFACTORY_S3_ENDPOINT_URL": self.endpoint,
        }

    def create_bucket(self) -> str:
        """A fresh bucket (through s3fs, as mlfactory would see it)."""
        import s3fs

        name = f"mlf-{uuid.uuid4().hex[:12]}"
        fs = s3fs.S3FileSystem(
            key=self.key,
            secret=self.secret,
            endpoint_url=self.endpoint,
            skip_instance_cache=True,
        )
        fs.mkdir(name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of the bucket and its bytes."""
        import s3fs

        fs = s3fs.S3FileSystem(
            key=self.key, secret=self.secret, endpoint_url=self.endpoint, skip_instance_cache=True
        )
        return {path: fs.cat_file(path) for path in fs.find(bucket)}


def start_server():
    """``(server, S3Server)``: a started ThreadedMotoServer with IAM authentication on."""
    try:
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError:
        require_tool("moto[server] and s3fs", False, "pip install -e '.[dev,s3]'")
        raise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    key, secret = _create_user(endpoint)
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        json.loads(response.read())
    return server, S3Server(endpoint, key, secret)


def _create_user(endpoint: str) -> tuple[str, str]:
    """An IAM user allowed everything, and its access key (before authentication is on)."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    name = f"mlfactory-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(POLICY))
    created = iam.create_access_key(UserName=name)["AccessKey"]
    return created["AccessKeyId"], created["SecretAccessKey"]
