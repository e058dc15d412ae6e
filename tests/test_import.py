"""Import in auto schema mode: the sample app into a real PostgreSQL 15."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest

from pgcutover import control
from pgcutover.errors import ExportVerificationError, TargetError, UsageError
from pgcutover.importer import import_export, plan_import
from pgcutover.throwaway_cluster import free_port
from pgcutover.verify_target import verify_target

from targetlib import copy_export, fingerprint, make_sample_export, rows_file, run_sql

pytestmark = pytest.mark.pg
PFA = 3000


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory):
    return make_sample_export(tmp_path_factory.mktemp("imp"), pfa_records=PFA)


def test_import_sample_auto_and_verify(sample_export, pg_db):
    lines = []
    result = import_export(sample_export, pg_db, progress=lines.append)
    assert result["changed"] is True
    manifest = json.loads((sample_export / "manifest.json").read_text())
    for table, t in manifest["tables"].items():
        assert result["tables"][table]["rows"] == t["rows"]
        assert result["tables"][table]["content_digest"] == t["content_digest"]
    # progress: one line per table with rows and rows/s
    assert any(l.startswith(f"pfa_records: {PFA} rows") and "rows/s" in l for l in lines)
    report = verify_target(sample_export, pg_db)
    assert report["ok"] and not report["problems"]
    assert report["tables"]["pfa_records"]["rows"] == PFA
    # marker row in the control schema, same transaction
    rows = run_sql(pg_db, "SELECT manifest_digest, status, tables->'users'->>'rows', tool_version "
                          "FROM pgcutover.imports", fetch=True)
    assert rows == [(manifest["manifest_digest"], "complete", "7", "0.1.0")]


def test_values_are_exact(sample_export, pg_db):
    """Spot checks against the SQLite file itself (independent of the digest code)."""
    import_export(sample_export, pg_db)
    db = sqlite3.connect(sample_export.parent / "app.db")
    conn = psycopg2.connect(pg_db)
    cur = conn.cursor()
    # every DateTime cell (INTEGER ms or TEXT) as epoch ms, milliseconds kept
    for table, col in [("users", "createdAt"), ("organizations", "createdAt"),
                       ("pfa_records", "createdAt"), ("pfa_records", "forecastEnd")]:
        src = {}
        for k, v in db.execute(f'SELECT id, "{col}" FROM "{table}"'):
            if isinstance(v, str):
                v = int(db.execute("SELECT CAST(round((julianday(?) - 2440587.5) * 86400000) "
                                   "AS INTEGER)", (v,)).fetchone()[0])
            src[k] = v
        cur.execute(f'SELECT id, (extract(epoch from "{col}")*1000)::bigint FROM "{table}"')
        assert dict(cur.fetchall()) == src, (table, col)
    # text with newline/tab/backslash, NOCASE e-mail, booleans
    src = dict(db.execute('SELECT id, description FROM organizations'))
    cur.execute('SELECT id, description FROM organizations')
    assert dict(cur.fetchall()) == src
    src = {k: bool(v) for k, v in db.execute('SELECT id, "isActive" FROM users')}
    cur.execute('SELECT id, "isActive" FROM users')
    assert dict(cur.fetchall()) == src
    # REAL -> double precision bit-exact; DECIMAL stored as REAL -> numeric via repr()
    src = dict(db.execute('SELECT id, "monthlyRate" FROM pfa_records'))
    cur.execute('SELECT id, "monthlyRate" FROM pfa_records')
    assert dict(cur.fetchall()) == src
    src = {k: (Decimal(repr(v)) if v is not None else None)
           for k, v in db.execute('SELECT id, "purchasePrice" FROM pfa_records')}
    cur.execute('SELECT id, "purchasePrice" FROM pfa_records')
    assert dict(cur.fetchall()) == src
    # column types: never float4, numeric for DECIMAL, jsonb for JSONB, timestamp(3)
    cur.execute("""SELECT column_name, format_type(atttypid, atttypmod) FROM pg_attribute a
                   JOIN information_schema.columns c ON c.column_name = a.attname
                   AND c.table_name = 'pfa_records' WHERE attrelid = '"pfa_records"'::regclass
                   AND attnum > 0""")
    types = dict(cur.fetchall())
    assert types["monthlyRate"] == "double precision"
    assert types["purchasePrice"] == "numeric"
    assert types["createdAt"] == "timestamp(3) without time zone"
    assert types["isDiscontinued"] == "boolean"
    cur.execute("""SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                   WHERE attrelid = '"organizations"'::regclass AND attname = 'settings'""")
    assert cur.fetchone()[0] == "jsonb"
    conn.close()


def test_auto_schema_structure(sample_export, pg_db):
    import_export(sample_export, pg_db)
    idx = dict(run_sql(pg_db, "SELECT indexname, indexdef FROM pg_indexes "
                              "WHERE schemaname = 'public'", fetch=True))
    assert "lower(email)" in idx["users_email_key"] and "UNIQUE" in idx["users_email_key"]
    assert idx["users_pkey"].startswith("CREATE UNIQUE INDEX users_pkey")
    assert 'WHERE (success = true)' in idx["ai_usage_logs_queryHash_createdAt_idx"]
    assert '"createdAt" DESC' in idx["ai_usage_logs_queryHash_createdAt_idx"]
    fks = dict(run_sql(pg_db, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                              "WHERE contype = 'f' AND convalidated "
                              "AND connamespace = 'public'::regnamespace", fetch=True))
    assert fks["api_configurations_organizationId_fkey"].endswith(
        "ON UPDATE CASCADE ON DELETE SET NULL")
    assert "ON DELETE RESTRICT" in fks["ai_usage_logs_userId_fkey"]
    assert len(fks) == 10
    # case-insensitive uniqueness kept
    with pytest.raises(psycopg2.errors.UniqueViolation):
        run_sql(pg_db, """INSERT INTO users (id, username, email, "passwordHash", "updatedAt")
                          SELECT 'x1', 'x1', upper(email), 'h', now() FROM users
                          WHERE email IS NOT NULL LIMIT 1""")
    # identity above SQLite's high-water mark (sync_logs: sqlite_sequence = 1, table empty)
    rows = run_sql(pg_db, """INSERT INTO sync_logs ("organizationId", "syncType", status)
                             VALUES ('o', 'full', 'ok') RETURNING id, "startedAt" """, fetch=True)
    assert rows[0][0] == 2


def test_second_run_is_noop_and_replace(sample_export, pg_db):
    first = import_export(sample_export, pg_db)
    again = import_export(sample_export, pg_db)
    assert again["changed"] is False and again["import_id"] == first["import_id"]
    # rows changed behind our back: no longer a no-op; refused without replace
    run_sql(pg_db, "DELETE FROM sync_logs; DELETE FROM user_organizations WHERE id IN "
                   "(SELECT id FROM user_organizations LIMIT 1)")
    with pytest.raises(TargetError, match="not empty"):
        import_export(sample_export, pg_db)
    replaced = import_export(sample_export, pg_db, replace=True)
    assert replaced["changed"] is True and replaced["import_id"] > first["import_id"]
    verify_target(sample_export, pg_db)


def test_refuses_tables_it_does_not_own(sample_export, pg_db):
    run_sql(pg_db, 'CREATE TABLE users (id text)')
    before = fingerprint(pg_db)
    with pytest.raises(TargetError, match="did not create") as ei:
        import_export(sample_export, pg_db, replace=True)
    assert ei.value.table == "users"
    assert fingerprint(pg_db) == before


def test_plan_changes_nothing(sample_export, pg_db):
    before = fingerprint(pg_db)
    plan = plan_import(sample_export, pg_db)
    assert plan["changed"] is True
    q = "\n".join(plan["executed_queries"])
    assert 'CREATE TABLE "public"."users"' in q and "COPY" in q and "setval" in q
    assert fingerprint(pg_db) == before
    import_export(sample_export, pg_db)
    assert plan_import(sample_export, pg_db)["changed"] is False


def test_tampered_export_refused_before_connecting(sample_export, tmp_path):
    exp = copy_export(sample_export, tmp_path / "exp")
    p = rows_file(exp, "users")
    data = bytearray(p.read_bytes())
    data[10] ^= 1
    p.write_bytes(bytes(data))
    closed = f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=2"
    with pytest.raises(ExportVerificationError) as ei:
        import_export(exp, closed)
    assert ei.value.table == "users"
    with pytest.raises(ExportVerificationError):
        plan_import(exp, closed)
    # an untampered export with the same DSN does try to connect (and fails there)
    with pytest.raises(TargetError, match="cannot connect"):
        import_export(sample_export, closed)


def test_incomplete_export_refused(sample_export, tmp_path):
    exp = copy_export(sample_export, tmp_path / "exp")
    (exp / "manifest.json").unlink()
    with pytest.raises((ExportVerificationError, UsageError)):
        import_export(exp, "host=127.0.0.1 port=1")


def test_advisory_lock_blocks_a_second_import(sample_export, pg_db):
    holder = psycopg2.connect(pg_db)
    holder.cursor().execute("SELECT pg_advisory_lock(%s)", (control.LOCK_KEY,))
    try:
        with pytest.raises(TargetError, match="another pgcutover import"):
            import_export(sample_export, pg_db)
    finally:
        holder.close()
    assert import_export(sample_export, pg_db)["changed"]


def test_time_zones_do_not_matter(sample_export, pg_db, monkeypatch):
    """Server default time zone and client TZ/PGTZ set to Pacific/Chatham (+13:45)."""
    dbname = pg_db.split("dbname=")[1].split()[0]
    run_sql(pg_db, f"ALTER DATABASE \"{dbname}\" SET timezone = 'Pacific/Chatham'")
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    monkeypatch.setenv("PGTZ", "Pacific/Chatham")
    time.tzset()
    try:
        import_export(sample_export, pg_db)
        verify_target(sample_export, pg_db)
        # a raw session in Chatham time still reads the UTC wall-clock values
        db = sqlite3.connect(sample_export.parent / "app.db")
        user, ms = db.execute('SELECT id, "updatedAt" FROM users LIMIT 1').fetchone()
        got = run_sql(pg_db, 'SELECT current_setting(\'TimeZone\'), '
                             'to_char("updatedAt", \'YYYY-MM-DD HH24:MI:SS.MS\') '
                             'FROM users WHERE id = %s', (user,), fetch=True)[0]
        assert got[0] == "Pacific/Chatham"
        from datetime import datetime, timezone
        expect = datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        assert got[1] == expect
        # the CURRENT_TIMESTAMP default stores UTC wall-clock time too
        row = run_sql(pg_db, """INSERT INTO sync_logs ("organizationId", "syncType", status)
                                VALUES ('o', 'full', 'ok')
                                RETURNING abs(extract(epoch from "startedAt" -
                                      (now() AT TIME ZONE 'UTC')))""", fetch=True)
        assert row[0][0] < 5
    finally:
        monkeypatch.undo()
        time.tzset()


def test_cli_import_and_verify(sample_export, pg_db):
    exe = Path(sys.executable).with_name("pgcutover")
    r = subprocess.run([str(exe), "import", str(sample_export), "--dsn", pg_db],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] is True
    assert "pfa_records: 3000 rows" in r.stderr
    r = subprocess.run([str(exe), "import", str(sample_export), "--dsn", pg_db],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["changed"] is False
    r = subprocess.run([str(exe), "verify-target", str(sample_export), "--dsn", pg_db],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    run_sql(pg_db, "UPDATE users SET role = 'admin' WHERE username <> 'admin'")
    r = subprocess.run([str(exe), "verify-target", str(sample_export), "--dsn", pg_db],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 6
    assert "users" in r.stderr and "'admin'" not in r.stderr


def test_other_schema_with_quoted_name(sample_export, pg_db):
    r = import_export(sample_export, pg_db, schema="App Data")
    assert r["changed"] and r["schema"] == "App Data"
    assert verify_target(sample_export, pg_db, schema="App Data")["ok"]
    assert run_sql(pg_db, "SELECT count(*) FROM \"App Data\".pfa_records", fetch=True) == [(PFA,)]
    # public is untouched; the marker is per schema
    assert run_sql(pg_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                   fetch=True) == [(0,)]
    with pytest.raises(UsageError):
        import_export(sample_export, pg_db, schema="pgcutover")
