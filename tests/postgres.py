"""A throwaway PostgreSQL server for the test run: `initdb` + `pg_ctl` on a temporary folder.

Why the tests start their own: the README's test command is the whole of CI, so nothing else
starts a database server; and a server of its own, listening only on a unix socket inside
its folder, can never touch a developer's real databases. PostgreSQL refuses to run as root
(CI and this sandbox run as root), so there the server runs as the `postgres` system user
that Debian's `postgresql` package creates, in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # Debian's layout, newest first
SYSTEM_USER = "postgres"


def _tool(name: str) -> str:
    """`initdb` / `pg_ctl` from Debian's versioned folder (not on PATH by default), else from PATH."""
    for folder in PG_BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; run `bash scripts/setup.sh --dev` (it installs postgresql)")
    return found


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    user: str

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server, over its unix socket."""
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its SQLAlchemy URL. Each test gets its own, so tests stay independent."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.socket_dir), user=self.user, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_server_user(command: list[str]) -> list[str]:
    """`command` run as the postgres system user when this process is root (postgres refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SYSTEM_USER, "--", *command]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server on a fresh cluster in a temporary folder, stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="holocine-pg-"))
    data, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SYSTEM_USER)
        for path in (root, socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        user = SYSTEM_USER
    initdb = [_tool("initdb"), "-D", str(data), "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8"]
    subprocess.run(_as_server_user(initdb), check=True, capture_output=True, text=True)
    options = f"-k {socket_dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200"
    start = [_tool("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"]
    started = subprocess.run(_as_server_user(start), capture_output=True, text=True)
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr or started.stdout}\n{log}")
    try:
        yield PostgresServer(socket_dir, user)
    finally:
        stop = [_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(stop), capture_output=True, text=True)
        shutil.rmtree(root, ignore_errors=True)
