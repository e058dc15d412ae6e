"""Rollback to SQLite: verified restore, idempotence, refusals, post-cutover writes.

Real SQLite files, the real sample app (started with its ctl script) writing through
its API, a real PostgreSQL target, and the real Ansible module."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pgcutover.errors import SourceError, UsageError
from pgcutover.rollback import (SourceInUse, TargetWritesDetected, detect_target_writes,
                                rollback, rollback_source)
from pgcutover.source_backup import backup_source, verify_backup

from test_sample_app import AppProc, _sample_templates, make_app_dir  # noqa: F401

from ansible_tasks import run_tasks, task

REPO = Path(__file__).resolve().parents[1]
HAS_IMPORT = all(importlib.util.find_spec(m) for m in ("pgcutover.export", "pgcutover.importer"))


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def count(db, table) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        conn.close()


def app_writes_a_sync_log(app) -> None:
    """Start the sample app, write one row through its API, stop it (stop must work)."""
    assert app.ctl("start").returncode == 0
    try:
        app.login()
        status, _ = app.request("POST", "/api/sync-logs", {
            "organizationId": "o1", "syncType": "pems", "status": "completed"})
        assert status == 201
    finally:
        assert app.ctl("stop").returncode == 0


@pytest.fixture
def cutover(tmp_path):
    """App dir with its SQLite file, backed up to two places (as at T-15)."""
    env_file, db = make_app_dir(tmp_path / "app", pfa_records=20)
    backup = backup_source(db, [tmp_path / "bk1", tmp_path / "bk2"], label="pre")
    return {"env_file": env_file, "db": db, "backup": backup,
            "files": [c["path"] for c in backup["copies"]], "tmp": tmp_path}


def test_restore_after_app_write_then_noop(cutover):
    c = cutover
    db, expected = c["db"], c["backup"]["sha256"]
    assert rollback_source(db, expected, c["files"])["changed"] is False  # untouched

    app = AppProc(c["tmp"], c["env_file"])
    app_writes_a_sync_log(app)
    assert sha(db) != expected and count(db, "sync_logs") == 1

    r = rollback_source(db, expected, c["files"])
    assert r["changed"] and r["restore_from"] == c["files"][0]
    assert r["after"]["sha256"] == expected == sha(db)
    assert r["before"]["sha256"] != expected
    kept = Path(r["replaced_kept_as"][0])
    assert kept.name.startswith("dev.db.pre-rollback-") and count(kept, "sync_logs") == 1
    assert count(db, "sync_logs") == 0
    assert not [p for p in db.parent.iterdir() if p.name.endswith(".tmp")]

    again = rollback_source(db, expected, c["files"])
    assert again["changed"] is False and again["source_matches"]
    # The application runs on the restored file.
    assert app.ctl("start").returncode == 0
    try:
        assert app.request("GET", "/health")[1]["users"] == 7
    finally:
        app.ctl("stop")


def test_corrupt_backup_is_skipped_or_refused(cutover):
    c = cutover
    db, expected = c["db"], c["backup"]["sha256"]
    first, second = (Path(f) for f in c["files"])
    with open(first, "r+b") as f:
        f.seek(4096)
        f.write(b"\x00garbage")
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM user_organizations")
    conn.commit()
    conn.close()
    changed = sha(db)
    with pytest.raises(SourceError, match="no backup verifies") as ei:
        rollback_source(db, expected, [first])
    assert ei.value.details == [{"path": str(first),
                                 "reason": "checksum mismatch (corrupt or tampered)"}]
    assert sha(db) == changed                       # refused: nothing was touched
    r = rollback_source(db, expected, [first, c["tmp"] / "missing", second])
    assert r["restore_from"] == str(second) and sha(db) == expected
    assert [s["reason"] for s in r["skipped_backups"]] == [
        "checksum mismatch (corrupt or tampered)", "missing"]
    with pytest.raises(UsageError):
        rollback_source(db, "not-a-sha", [second])


def test_leftover_wal_counts_as_change(cutover):
    """A writer killed -9 in WAL mode leaves its commits in -wal only: the main file
    still has the expected sha256, yet the database is not the snapshot."""
    c = cutover
    db = c["db"]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    snap = backup_source(db, [c["tmp"] / "walbk"], label="wal")
    expected, files = snap["sha256"], [snap["copies"][0]["path"]]
    code = ("import sqlite3,os,signal\n"
            f"c=sqlite3.connect({str(db)!r})\n"
            "c.execute('PRAGMA wal_autocheckpoint=0')\n"
            "c.execute(\"INSERT INTO sync_logs (organizationId,syncType,status) VALUES ('o','t','s')\")\n"
            "c.commit();os.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code])
    assert p.returncode == -signal.SIGKILL
    wal = Path(str(db) + "-wal")
    assert wal.stat().st_size > 0 and sha(db) == expected
    r = rollback_source(db, expected, files)
    assert r["changed"] and not r["source_matches"] and r["before"]["wal_size"] > 0
    assert not wal.exists() and not Path(str(db) + "-shm").exists()
    assert [Path(k).name.split(".pre-rollback-")[0] for k in r["replaced_kept_as"]] == \
        ["dev.db", "dev.db-wal"]
    assert count(db, "sync_logs") == 0 and sha(db) == expected
    assert rollback_source(db, expected, files)["changed"] is False


def test_refuses_while_a_process_holds_the_file(cutover):
    c = cutover
    db, expected = c["db"], c["backup"]["sha256"]
    db.write_bytes(db.read_bytes()[:-4096])         # damaged
    holder = subprocess.Popen([sys.executable, "-c", f"f=open({str(db)!r},'rb');"
                               "print('ok',flush=True);import time;time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(SourceInUse) as ei:
            rollback_source(db, expected, c["files"])
        assert ei.value.details[0]["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert rollback_source(db, expected, c["files"])["changed"]


def test_missing_file_is_restored(cutover):
    c = cutover
    c["db"].unlink()
    r = rollback_source(c["db"], c["backup"]["sha256"], c["files"][1:])
    assert r["changed"] and r["replaced_kept_as"] == [] and verify_backup(c["files"][1])
    assert sha(c["db"]) == c["backup"]["sha256"]


# -- post-cutover writes on PostgreSQL ---------------------------------------------------

def _pg_url(dsn: str) -> str:
    from urllib.parse import quote
    p = dict(x.split("=", 1) for x in dsn.split())
    password = Path(p["passfile"]).read_text().strip().split(":", 4)[4]
    return (f"postgresql://{p['user']}:{quote(password, safe='')}@{p['host']}:{p['port']}/"
            f"{p['dbname']}?schema=public&connection_limit=5")


@pytest.fixture
def migrated(cutover, pg_db):
    from pgcutover.export import export
    from pgcutover.importer import import_export

    export(cutover["db"], cutover["tmp"] / "export")
    import_export(cutover["tmp"] / "export", pg_db)
    pg_env = cutover["tmp"] / "pg.env"
    pg_env.write_text(f'DATABASE_URL="{_pg_url(pg_db)}"\n')
    os.chmod(pg_env, 0o600)
    return dict(cutover, dsn=pg_db, export=cutover["tmp"] / "export", pg_env=pg_env)


@pytest.mark.pg
@pytest.mark.skipif(not HAS_IMPORT, reason="pgcutover.export/importer not there yet")
def test_detects_app_writes_on_postgresql(migrated):
    m = migrated
    clean = detect_target_writes(m["export"], m["dsn"])
    assert clean["writes_detected"] is False, clean["differing_tables"]
    assert clean["tables"]["users"]["actual_rows"] == 7

    (m["tmp"] / "pgapp").mkdir()
    app_writes_a_sync_log(AppProc(m["tmp"] / "pgapp", m["pg_env"]))

    dirty = detect_target_writes(m["export"], m["dsn"])
    assert dirty["writes_detected"] and dirty["differing_tables"] == ["sync_logs"]
    t = dirty["tables"]["sync_logs"]
    assert (t["expected_rows"], t["actual_rows"]) == (0, 1)
    assert t["expected_digest"] != t["actual_digest"]
    # The rows written after the cutover, by primary key (never their values).
    assert t["keys"] == [{"key": {"id": 2}, "problem": "row in PostgreSQL is not in the export"}]

    with pytest.raises(TargetWritesDetected, match="sync_logs") as ei:
        rollback(m["db"], m["backup"]["sha256"], m["files"], export_dir=m["export"],
                 dsn=m["dsn"])
    assert ei.value.table == "sync_logs" and ei.value.details[0]["actual_rows"] == 1
    forced = rollback(m["db"], m["backup"]["sha256"], m["files"], export_dir=m["export"],
                      dsn=m["dsn"], force=True)
    assert forced["target"]["writes_detected"] and forced["changed"] is False  # SQLite intact


# -- the Ansible module ------------------------------------------------------------------

def rollback_task(args: dict, check: bool = False) -> dict:
    return task("pgcutover_rollback", args, check)


def sha_task(path) -> dict:
    return {"name": "sha", "ansible.builtin.stat": {"path": str(path),
                                                    "checksum_algorithm": "sha256"}}


@pytest.mark.ansible
def test_module_check_mode_restore_and_rerun(cutover):
    c = cutover
    db, expected = c["db"], c["backup"]["sha256"]
    conn = sqlite3.connect(db)
    conn.execute("UPDATE organizations SET name = 'changed after cutover'")
    conn.commit()
    conn.close()
    changed = sha(db)
    args = {"sqlite_path": str(db), "expected_sha256": expected, "backups": c["files"],
            "check_target_writes": False}
    (plan, after_plan, done, rerun, bad, missing), _ = run_tasks(c["tmp"], [
        rollback_task(args, check=True), sha_task(db), rollback_task(args),
        rollback_task(args),
        rollback_task(dict(args, backups=[str(c["tmp"] / "nope")], expected_sha256="0" * 64)),
        rollback_task({"sqlite_path": str(db), "expected_sha256": expected})])
    assert plan["changed"] is True and plan["restore_from"] == c["files"][0], plan
    assert after_plan["stat"]["checksum"] == changed    # check mode changed nothing
    assert done["changed"] is True and done["after"]["sha256"] == expected == sha(db)
    assert rerun["changed"] is False and rerun["source_matches"]
    assert bad["failed"] and bad["error"]["code"] == "source"
    assert bad["error"]["details"] == [{"path": str(c["tmp"] / "nope"), "reason": "missing"}]
    assert missing["failed"] and "export_dir" in missing["msg"]


@pytest.mark.ansible
@pytest.mark.pg
@pytest.mark.skipif(not HAS_IMPORT, reason="pgcutover.export/importer not there yet")
def test_module_refuses_on_target_writes(migrated):
    import psycopg2

    m = migrated
    conn = psycopg2.connect(m["dsn"])
    with conn, conn.cursor() as cur:   # what the app would do after the cutover
        cur.execute('UPDATE "users" SET "role" = %s WHERE "username" = %s', ("user", "admin"))
    conn.close()
    args = {"sqlite_path": str(m["db"]), "expected_sha256": m["backup"]["sha256"],
            "backups": m["files"], "export_dir": str(m["export"]), "dsn": m["dsn"]}
    (refused, forced), _ = run_tasks(m["tmp"], [rollback_task(args, check=True),
                                           rollback_task(dict(args, force=True))])
    assert refused["failed"] and refused["error"]["code"] == "target_writes"
    assert "users" in refused["msg"] and refused["error"]["table"] == "users"
    assert "admin" not in json.dumps(refused["error"])  # digests and counts, never row values
    assert not forced.get("failed") and forced["target"]["differing_tables"] == ["users"]


@pytest.mark.pg
@pytest.mark.skipif(not HAS_IMPORT, reason="pgcutover.export not there yet")
def test_unimported_target_counts_as_different(cutover, pg_db):
    """A wrong DSN/schema or export must not look like 'no writes'."""
    from pgcutover.export import export

    export(cutover["db"], cutover["tmp"] / "export")
    r = detect_target_writes(cutover["tmp"] / "export", pg_db)
    assert r["writes_detected"] and r["problems"] == ["no pgcutover import marker in this schema"]
    assert r["tables"]["users"]["reason"] == "table or column missing in PostgreSQL"


def test_restored_file_keeps_owner_and_mode(cutover):
    """The app (its own user under systemd) must be able to open the restored file."""
    db, expected = cutover["db"], cutover["backup"]["sha256"]
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    os.chown(db, 65534, 65534)
    os.chmod(db, 0o640)
    with open(db, "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    r = rollback_source(db, expected, cutover["files"])
    st = db.stat()
    assert r["changed"] and (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)
    link = db.with_name("current.db")
    link.symlink_to(db.name)
    db.write_bytes(b"")
    r = rollback_source(link, expected, cutover["files"])   # a symlinked path
    assert link.is_symlink() and sha(db) == expected
