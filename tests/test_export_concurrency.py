"""export under a live writer, and kill -9 in the middle of an export."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from pgcutover import sample
from pgcutover.errors import ExportVerificationError
from pgcutover.export import export
from pgcutover.manifest import load_manifest
from pgcutover.verify_export import verify_export

WRITER = textwrap.dedent('''
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    n = 0
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline:
        conn.execute("BEGIN IMMEDIATE")
        # one committed state = both tables have the same number of rows
        conn.execute("INSERT INTO a (v) VALUES (?)", (n,))
        conn.execute("INSERT INTO b (v) VALUES (?)", (n,))
        conn.execute("COMMIT")
        n += 1
        if n == 50:
            print("ready", flush=True)
    print(n, flush=True)
''')


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_export_during_writes_is_one_committed_state(tmp_path, journal):
    db = tmp_path / "live.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER)")
    conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER, pad TEXT)")
    conn.executemany("INSERT INTO b (v, pad) VALUES (?, ?)",
                     [(-i - 1, "x" * 200) for i in range(20000)])
    conn.executemany("INSERT INTO a (v) VALUES (?)", [(-i - 1,) for i in range(20000)])
    conn.commit()
    conn.close()
    w = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "5"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert w.stdout.readline().strip() == "ready"
        results = []
        for i in range(3):
            export(db, tmp_path / f"out{i}")
            m = load_manifest(tmp_path / f"out{i}")
            results.append((m["tables"]["a"]["rows"], m["tables"]["b"]["rows"]))
    finally:
        w.wait(timeout=60)
    written = int(w.stdout.readline())
    assert w.returncode == 0
    for a, b in results:
        assert a == b, "export mixes two committed states"
        assert 20050 <= a <= 20000 + written
    assert written >= 50                  # the writer really ran during the exports


def test_kill_9_mid_export_leaves_no_manifest(tmp_path):
    db = tmp_path / "big.db"
    sample.generate(db, pfa_records=60000)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "pgcutover.cli", "export", str(db),
                          "--out", str(out)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        # wait until table files are being written, then kill hard mid-way
        while True:
            line = p.stderr.readline()
            assert line, "export ended before it could be killed"
            if line.startswith("field_configurations:"):
                break
        time.sleep(0.05)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert out.is_dir()
    assert not (out / "manifest.json").exists()
    with pytest.raises(ExportVerificationError):
        verify_export(out)
