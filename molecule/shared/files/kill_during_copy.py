#!/usr/bin/env python3
"""Fault injector: wait until pgcutover's COPY is loading rows, then break it.

Polls pg_stat_progress_copy for a COPY FROM issued by a session whose
application_name is "pgcutover" (set by pgcutover.pgconn) and, once at least
--min-tuples rows went in, either
  * kill-client: SIGKILL the client process holding that connection (found with
    `ss` by its TCP port or Unix-socket peer, so exactly that pid: the CLI or the
    Ansible module), or
  * crash-server: `pg_ctl stop -m immediate` (PostgreSQL crashes, no clean shutdown).
Prints one JSON line describing what it did; exit 0 only if the fault was injected.
Usage: kill_during_copy.py --dsn DSN --mode kill-client|crash-server
       [--pg-ctl PATH --data-dir DIR] [--min-tuples N] [--timeout S]
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time

import psycopg2

PROGRESS_SQL = """
SELECT a.pid, a.client_port, p.tuples_processed, p.relid::regclass::text
FROM pg_stat_progress_copy p JOIN pg_stat_activity a ON a.pid = p.pid
WHERE a.application_name = 'pgcutover' AND p.command = 'COPY FROM'
ORDER BY p.tuples_processed DESC LIMIT 1
"""


def _ss(args: list[str]) -> list[str]:
    return subprocess.run(["ss", "-H", *args], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def client_pid(port: int | None, backend_pid: int) -> int:
    """The local process holding the client end of the backend's connection.

    TCP: the process whose socket has the client port. Unix socket: the process whose
    socket is the peer of the backend's (matched by inode).
    """
    if port and port > 0:
        lines = _ss(["-tnp", "state", "established", f"( sport = :{port} )"])
    else:
        socks = [line.split() for line in _ss(["-xp"])]
        # columns: netid state recv-q send-q local-addr local-inode peer-addr peer-inode users
        peer = {s[7] for s in socks if len(s) > 8 and f"pid={backend_pid}," in s[8]}
        lines = [" ".join(s) for s in socks if len(s) > 8 and s[5] in peer]
    pids = {int(p) for line in lines for p in re.findall(r"pid=(\d+)", line)} - {backend_pid}
    if len(pids) != 1:
        raise RuntimeError(f"expected one client process for backend {backend_pid}, "
                           f"found {sorted(pids)}")
    return pids.pop()


def crash_server(pg_ctl: str, data_dir: str) -> None:
    cmd = [pg_ctl, "-D", data_dir, "-m", "immediate", "-w", "stop"]
    if os.geteuid() == 0:  # the cluster belongs to the postgres OS user
        cmd = ["runuser", "-u", pwd.getpwuid(os.stat(data_dir).st_uid).pw_name, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, cwd="/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--mode", choices=("kill-client", "crash-server"), required=True)
    parser.add_argument("--pg-ctl")
    parser.add_argument("--data-dir")
    parser.add_argument("--min-tuples", type=int, default=10000)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    deadline = time.monotonic() + args.timeout
    conn = None
    while time.monotonic() < deadline:
        try:
            if conn is None:
                conn = psycopg2.connect(args.dsn, application_name="pgcutover-molecule-fault")
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(PROGRESS_SQL)
                row = cur.fetchone()
        except psycopg2.OperationalError:
            conn = None  # server not up yet (or restarting): keep polling
            row = None
        if row and row[2] >= args.min_tuples:
            backend_pid, port, tuples, table = row
            result = {"mode": args.mode, "table": table, "tuples_processed": tuples,
                      "backend_pid": backend_pid}
            if args.mode == "kill-client":
                pid = client_pid(port, backend_pid)
                os.kill(pid, signal.SIGKILL)
                result["killed_pid"] = pid
            else:
                conn.close()
                crash_server(args.pg_ctl, args.data_dir)
            print(json.dumps(result))
            return 0
        time.sleep(0.05)
    print(json.dumps({"mode": args.mode, "error": "no pgcutover COPY seen before the timeout"}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
