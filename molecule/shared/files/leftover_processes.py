#!/usr/bin/env python3
"""List processes that still belong to a rehearsal directory.

A process belongs to DIR when its command line, working directory or executable is
inside DIR (the PostgreSQL postmaster is started with -D DIR/...; the sample app
and PgBouncer run from or with files in DIR). Prints a JSON list of
{"pid", "cmdline"}; used by destroy.yml to prove that nothing is left running.
Usage: leftover_processes.py DIR
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def belongs(pid: str, root: str) -> str | None:
    proc = Path("/proc") / pid
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        places = [cmdline]
        for link in ("cwd", "exe"):
            try:
                places.append(os.readlink(proc / link))
            except OSError:
                pass
    except OSError:
        return None  # gone meanwhile
    if any(p == root or p.startswith(root + "/") or f" {root}/" in f" {p}" for p in places):
        return cmdline
    return None


def main() -> None:
    root = os.path.realpath(sys.argv[1])
    me = {str(os.getpid()), str(os.getppid())}
    found = []
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        if pid in me:
            continue
        cmdline = belongs(pid, root)
        if cmdline is not None:
            found.append({"pid": int(pid), "cmdline": cmdline[:200]})
    print(json.dumps(found))


if __name__ == "__main__":
    main()
