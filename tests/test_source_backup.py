"""backup_source / verify_backup / sqlite_fingerprint on real SQLite files."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pgcutover import sample
from pgcutover.errors import UsageError
from pgcutover.source_backup import (backup_source, sqlite_fingerprint, sqlite_holders,
                                     verify_backup)


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    db = tmp_path_factory.mktemp("tpl") / "dev.db"
    sample.generate(db, pfa_records=200)
    return db


@pytest.fixture
def src(tmp_path, template):
    db = tmp_path / "prisma" / "dev.db"
    db.parent.mkdir()
    shutil.copyfile(template, db)
    return db


def test_three_copies_identical_to_source(src, tmp_path):
    before = sha(src), src.stat().st_mtime_ns, sorted(os.listdir(src.parent))
    dests = [tmp_path / "b" / n for n in ("one", "two", "three")]
    r = backup_source(src, dests, label="t1")
    # The source is untouched: same bytes, same mtime, no side files created.
    assert (sha(src), src.stat().st_mtime_ns, sorted(os.listdir(src.parent))) == before
    assert r["changed"] and r["method"] == "locked-copy" and r["identical_to_source"]
    assert r["sha256"] == before[0] == r["source"]["sha256"]
    assert r["quick_check"] == "ok" and len(r["copies"]) == 3
    for c, d in zip(r["copies"], dests):
        f = Path(c["path"])
        assert f == d.resolve() / "dev.db.backup-t1" and c["verified"]
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        assert sha(f) == r["sha256"]
        # sha256sum format: the file can be checked on any host without pgcutover.
        assert Path(c["sha256_file"]).read_text() == f"{r['sha256']}  {f.name}\n"
        chk = subprocess.run(["sha256sum", "-c", Path(c["sha256_file"]).name], cwd=d,
                             capture_output=True, text=True)
        assert chk.returncode == 0, chk.stdout + chk.stderr
    # The copy is a working database with the same content.
    conn = sqlite3.connect(r["copies"][2]["path"])
    assert conn.execute("SELECT count(*) FROM pfa_records").fetchone() == (200,)
    conn.close()
    # Same label, unchanged source: nothing to do.
    again = backup_source(src, dests, label="t1")
    assert not again["changed"] and again["sha256"] == r["sha256"]


def test_tamper_detection(src, tmp_path):
    r = backup_source(src, [tmp_path / "b1", tmp_path / "b2"], label="x")
    good, bad = (Path(c["path"]) for c in r["copies"])
    assert verify_backup(good) and verify_backup(bad)
    with open(bad, "r+b") as f:            # one flipped byte in the middle
        f.seek(bad.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x01]))
    assert not verify_backup(bad) and verify_backup(good)
    Path(str(good) + ".sha256").unlink()
    assert not verify_backup(good)          # no checksum, no trust
    # A different backup under the same name is never overwritten.
    conn = sqlite3.connect(src)
    conn.execute("UPDATE users SET role='user' WHERE username='admin'")
    conn.commit()
    conn.close()
    with pytest.raises(UsageError, match="already exists"):
        backup_source(src, [tmp_path / "b2"], label="x")
    assert not verify_backup(bad)


def test_wal_content_uses_backup_api(src, tmp_path):
    conn = sqlite3.connect(src)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("INSERT INTO sync_logs (organizationId, syncType, status) VALUES ('o','t','s')")
    conn.commit()                            # kept open: the row lives in dev.db-wal
    try:
        fp = sqlite_fingerprint(src)
        assert fp["wal_size"] > 0 and fp["wal_sha256"]
        r = backup_source(src, [tmp_path / "w"], label="wal")
    finally:
        conn.close()
    assert r["method"] == "backup-api" and not r["identical_to_source"]
    assert verify_backup(r["copies"][0]["path"]) and r["quick_check"] == "ok"
    copy = sqlite3.connect(r["copies"][0]["path"])
    assert copy.execute("SELECT count(*) FROM sync_logs").fetchone() == (1,)
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # self-contained
    copy.close()


def test_wal_database_without_wal_file_gets_no_side_files(src, tmp_path):
    conn = sqlite3.connect(src)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()                             # clean close: checkpoint, -wal removed
    assert sorted(os.listdir(src.parent)) == ["dev.db"]
    r = backup_source(src, [tmp_path / "c"])
    assert r["identical_to_source"] and sorted(os.listdir(src.parent)) == ["dev.db"]


def test_refusals(src, tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    with pytest.raises(UsageError, match="0700"):
        backup_source(src, [open_dir])
    with pytest.raises(UsageError, match="distinct"):
        backup_source(src, [tmp_path / "d", tmp_path / "d"])
    with pytest.raises(UsageError, match="label"):
        backup_source(src, [tmp_path / "d"], label="../x")
    with pytest.raises(UsageError, match="not found"):
        backup_source(tmp_path / "nope.db", [tmp_path / "d"])
    (tmp_path / "link").symlink_to(tmp_path / "d2")
    with pytest.raises(UsageError, match="symlink"):
        backup_source(src, [tmp_path / "link"])


def test_holders_and_cli(src, tmp_path):
    # A real other process holding the file open is found by the /proc scan.
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3,sys,time;"
                               f"c=sqlite3.connect({str(src)!r});"
                               "c.execute('select 1 from users').fetchall();"
                               "print('ok',flush=True);time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        assert [h["pid"] for h in sqlite_holders(src)] == [holder.pid]
    finally:
        holder.kill()
        holder.wait()
    assert sqlite_holders(src) == []
    cli = Path(sys.executable).with_name("pgcutover")
    r = subprocess.run([str(cli), "backup-source", str(src), "--dest", str(tmp_path / "c1"),
                        "--dest", str(tmp_path / "c2"), "--label", "cli"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sha256"] == sha(src) and [c["verified"] for c in out["copies"]] == [True, True]


def test_concurrent_writer_in_rollback_journal_mode(src, tmp_path):
    """An app writing while T-30 backs up: every copy is one committed state, and
    still a byte copy (the read lock makes the writer wait, not the backup fail)."""
    import time
    stop = tmp_path / "stop"
    code = ("import os,sqlite3,time\n"
            f"c=sqlite3.connect({str(src)!r}, timeout=30)\n"
            "n=0\n"
            f"while not os.path.exists({str(stop)!r}):\n"
            "    c.execute(\"INSERT INTO sync_logs (organizationId,syncType,status) VALUES ('o','t','s')\")\n"
            "    c.commit(); n+=1; time.sleep(0.002)\n"
            "    if n==1: print('go',flush=True)\n"
            "print(n,flush=True)\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "go"
    results = []
    try:
        for i in range(4):
            results.append(backup_source(src, [tmp_path / f"cw{i}"]))
            time.sleep(0.1)
    finally:
        stop.touch()
        total = int(writer.stdout.readline())
        assert writer.wait(30) == 0
    counts = []
    for r in results:
        assert r["method"] == "locked-copy" and r["quick_check"] == "ok"
        conn = sqlite3.connect(r["copies"][0]["path"])
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        counts.append(conn.execute("SELECT count(*) FROM sync_logs").fetchone()[0])
        conn.close()
    # Four different committed states, taken while the writer kept going.
    assert counts == sorted(set(counts)) and 0 < counts[0] and counts[-1] < total, (counts, total)
