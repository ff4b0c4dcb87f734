"""A real, throwaway PostgreSQL server for the test session.

Runs Debian's PostgreSQL binaries as an unprivileged user (postgres refuses to run as root) on a
free loopback port, with password authentication, in a temporary folder removed afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "mlfactory"


def find_bindir() -> Path:
    """Folder holding initdb and pg_ctl (pg_config --bindir, initdb on PATH, then Debian's
    layout: the same places as scripts/ensure_test_deps.sh)."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
        "`apt-get install -y postgresql` (`make test` does this)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    password: str
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def major_version(self) -> str:
        """Major version of the binaries in use (whatever the distribution ships), e.g. "15"."""
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"\(PostgreSQL\) (\d+)", out)
        if match is None:
            raise RuntimeError(f"cannot read the PostgreSQL version from {out!r}")
        return match.group(1)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    @classmethod
    def start(cls) -> PostgresServer:
        run_as = None
        if os.geteuid() == 0:
            run_as = "postgres" if _user_exists("postgres") else "nobody"
        root = Path(tempfile.mkdtemp(prefix="mlfactory-pg-"))
        server = cls(find_bindir(), root, free_port(), secrets.token_urlsafe(16), run_as)
        pwfile = root / "pwfile"
        pwfile.write_text(server.password + "\n")
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        server._run(
            str(server.bindir / "initdb"),
            "-D", str(server.data_dir),
            "-U", SUPERUSER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        server._run(
            str(server.bindir / "pg_ctl"),
            "-D", str(server.data_dir),
            "-o", options,
            "-l", str(root / "server.log"),
            "-w", "-t", "60",
            "start",
        )  # fmt: skip
        return server

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
