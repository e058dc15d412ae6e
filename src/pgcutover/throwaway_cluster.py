"""A throwaway PostgreSQL cluster in a directory: for tests, benchmarks, restore drills.

``initdb`` refuses to run as root, so when we are root the cluster is created and run
as the ``postgres`` OS user (the directory is handed to it). Authentication: trust on
the private Unix socket directory only, scram-sha-256 on TCP 127.0.0.1, superuser
password written to a 0600 passfile (never on a command line).
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PGCUTOVER_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayCluster:
    """Start with ``start()``; ``dsn`` and ``passfile`` are then usable by libpq clients."""

    def __init__(self, base_dir: str | os.PathLike | None = None, port: int | None = None,
                 superuser: str = "postgres", settings: dict | None = None):
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="pgcutover-pg-")).absolute()
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.port = port or free_port()
        self.superuser = superuser
        self.password = secrets.token_urlsafe(18)
        self.passfile = self.base / "pgpass"
        self.settings = settings or {}
        self._as_root = os.geteuid() == 0

    # -- running commands as the cluster owner ---------------------------------------
    def _run(self, args: list[str], **kw):
        if self._as_root:
            pw = pwd.getpwnam("postgres")

            def demote():
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
            kw["preexec_fn"] = demote
            kw.setdefault("cwd", "/tmp")
        proc = subprocess.run(args, capture_output=True, text=True, **kw)
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _chown(self, path: Path):
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    @property
    def dsn(self) -> str:
        return (f"host=127.0.0.1 port={self.port} user={self.superuser} "
                f"dbname=postgres passfile={self.passfile}")

    def dsn_for(self, dbname: str) -> str:
        return self.dsn.replace("dbname=postgres", f"dbname={dbname}")

    def start(self) -> "ThrowawayCluster":
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            # The server runs as `postgres`, which must be able to reach the directory.
            for parent in self.base.resolve().parents:
                if not os.stat(parent).st_mode & 0o001:
                    raise RuntimeError(f"{parent} is not searchable by the postgres user; "
                                       "put the throwaway cluster elsewhere")
        self.sockdir.mkdir(exist_ok=True)
        for p in (self.base, self.sockdir):
            os.chmod(p, 0o700)
            self._chown(p)
        pwfile = self.base / "initpw"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.superuser,
                   "--pwfile", str(pwfile), "--auth-local=trust",
                   "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                   "--data-checksums"])
        pwfile.unlink()
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                "unix_socket_directories": f"'{self.sockdir}'", "fsync": "off",
                "synchronous_commit": "off", "full_page_writes": "off",
                "max_wal_size": "'4GB'", "shared_buffers": "'256MB'",
                "maintenance_work_mem": "'256MB'", "logging_collector": "off"}
        conf.update({k: str(v) for k, v in self.settings.items()})
        with open(self.data / "postgresql.auto.conf", "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        self.passfile.write_text(
            f"127.0.0.1:{self.port}:*:{self.superuser}:{self.password}\n")
        os.chmod(self.passfile, 0o600)
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                   "-l", str(self.base / "server.log"), "start"])
        return self

    def stop(self, mode: str = "fast"):
        if (self.data / "postmaster.pid").exists():
            try:
                self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m",
                           mode, "stop"])
            except RuntimeError:
                pass

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def wait_ready(self, timeout: float = 30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p",
                                str(self.port)], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError("PostgreSQL did not become ready")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()
