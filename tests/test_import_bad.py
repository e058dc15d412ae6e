"""Bad data that reaches the target: the import rolls back and names table, column, key
(never the value); a killed import leaves the target exactly as before."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgcutover import export, sample
from pgcutover.errors import ImportFailedError
from pgcutover.importer import import_export
from pgcutover.verify_target import verify_target

from targetlib import (col_index, copy_export, edit_rows, fingerprint, load_prisma_schema,
                       make_sample_export, run_sql, set_cell)

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory):
    return make_sample_export(tmp_path_factory.mktemp("bad"), pfa_records=500)


def _no_value(exc, value: str):
    assert value not in str(exc)
    assert value not in json.dumps(exc.as_dict(), default=str)


def _first_id(exp, table, line_no=0):
    lines = (exp / json.loads((exp / "manifest.json").read_text())["tables"][table]["file"]
             ).read_text().splitlines()
    return lines[line_no].split("\t")[0]


def test_orphan_foreign_key_row(sample_export, tmp_path, pg_db):
    """SQLite with foreign_keys=OFF stores orphans; the FK built after the load rejects them."""
    exp = copy_export(sample_export, tmp_path / "exp")
    ci = col_index(exp, "user_organizations", "organizationId")
    bad = "org-that-does-not-exist"
    edit_rows(exp, "user_organizations", lambda ls: [set_cell(ls[0], ci, bad)] + ls[1:])
    before = fingerprint(pg_db)
    with pytest.raises(ImportFailedError) as ei:
        import_export(exp, pg_db)
    e = ei.value
    assert e.table == "user_organizations" and e.column == "organizationId"
    assert e.key == {"id": _first_id(exp, "user_organizations")}
    assert "foreign key" in e.message
    _no_value(e, bad)
    assert fingerprint(pg_db) == before


def test_unique_violation_unicode_nocase(tmp_path, pg_db):
    """SQLite NOCASE folds ASCII only: 'É@x' and 'é@x' coexist under its unique index;
    PostgreSQL's lower() index (case-insensitive for all of Unicode) refuses them."""
    db = tmp_path / "app.db"
    sample.generate(str(db))
    c = sqlite3.connect(db)
    ids = [r[0] for r in c.execute("SELECT id FROM users WHERE email IS NOT NULL ORDER BY id LIMIT 2")]
    c.execute("UPDATE users SET email = 'Étienne@x.test' WHERE id = ?", (ids[0],))
    c.execute("UPDATE users SET email = 'étienne@x.test' WHERE id = ?", (ids[1],))
    c.commit()
    c.close()
    exp = tmp_path / "exp"
    export.export(str(db), str(exp))
    with pytest.raises(ImportFailedError) as ei:
        import_export(exp, pg_db)
    e = ei.value
    assert e.table == "users" and "users_email_key" in e.message
    assert sorted(d["key"]["id"] for d in e.details) == sorted(ids)
    _no_value(e, "tienne@x.test")
    assert fingerprint(pg_db)["relations"] == []


def test_conversion_error_names_key(sample_export, tmp_path, pg_db):
    exp = copy_export(sample_export, tmp_path / "exp")
    ci = col_index(exp, "users", "createdAt")        # a mixed INTEGER/TEXT DateTime column
    bad = "t2025-13-45 25:61:00"
    edit_rows(exp, "users", lambda ls: ls[:2] + [set_cell(ls[2], ci, bad)] + ls[3:])
    with pytest.raises(ImportFailedError) as ei:
        import_export(exp, pg_db)
    e = ei.value
    assert (e.table, e.column) == ("users", "createdAt")
    assert e.key == {"id": _first_id(exp, "users", 2)}
    _no_value(e, bad[1:])
    assert fingerprint(pg_db)["relations"] == []


def test_copy_rejects_value_line_mapped_to_key(sample_export, tmp_path, pg_db):
    """A boolean INTEGER cell goes to COPY untouched; PostgreSQL refuses 2, and the COPY
    CONTEXT line number is mapped back to the row's primary key."""
    exp = copy_export(sample_export, tmp_path / "exp")
    ci = col_index(exp, "pfa_records", "isDiscontinued")
    edit_rows(exp, "pfa_records", lambda ls: ls[:123] + [set_cell(ls[123], ci, "2")] + ls[124:])
    with pytest.raises(ImportFailedError) as ei:
        import_export(exp, pg_db)
    e = ei.value
    assert (e.table, e.column) == ("pfa_records", "isDiscontinued")
    assert e.key == {"id": _first_id(exp, "pfa_records", 123)}
    assert '"2"' not in str(e)
    assert fingerprint(pg_db)["relations"] == []


def test_digest_mismatch_rolls_back_and_lists_keys(sample_export, tmp_path, pg_db):
    """Content that is not what the manifest's digest describes (sizes and SHA-256
    re-sealed, so only the content digest can catch it) is rolled back."""
    exp = copy_export(sample_export, tmp_path / "exp")
    ci = col_index(exp, "organizations", "name")
    edit_rows(exp, "organizations",
              lambda ls: ls[:5] + [set_cell(ls[5], ci, "Changed Name")] + ls[6:],
              reseal_digest=False)
    with pytest.raises(ImportFailedError, match="content digest") as ei:
        import_export(exp, pg_db)
    e = ei.value
    assert e.table == "organizations"
    # PostgreSQL holds exactly the file: the file is what differs from the manifest
    assert "export inconsistent" in e.details[0]["problem"]
    _no_value(e, "Changed Name")
    assert fingerprint(pg_db)["relations"] == []


def test_decimal_that_would_round_in_existing_schema(tmp_path, pg_db):
    """decimal(65,30) would silently round 1.5e-40; the importer refuses, naming the key."""
    db = tmp_path / "app.db"
    sample.generate(str(db), pfa_records=50)
    c = sqlite3.connect(db)
    pid = c.execute("SELECT id FROM pfa_records ORDER BY id LIMIT 1 OFFSET 7").fetchone()[0]
    c.execute('UPDATE pfa_records SET "purchasePrice" = 1.5e-40 WHERE id = ?', (pid,))
    c.commit()
    c.close()
    exp = tmp_path / "exp"
    export.export(str(db), str(exp))
    load_prisma_schema(pg_db)
    before = fingerprint(pg_db)
    with pytest.raises(ImportFailedError) as ei:
        import_export(exp, pg_db, schema_mode="existing")
    e = ei.value
    assert (e.table, e.column, e.key) == ("pfa_records", "purchasePrice", {"id": pid})
    assert fingerprint(pg_db) == before
    # auto mode uses unconstrained numeric: the value fits exactly
    run_sql(pg_db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    import_export(exp, pg_db)
    assert run_sql(pg_db, 'SELECT "purchasePrice"::text FROM pfa_records WHERE id = %s',
                   (pid,), fetch=True) == [("0.00000000000000000000000000000000000000015",)]


def test_passthrough_table_streams_the_file(tmp_path, pg_db):
    """A table whose cells need no conversion is streamed to COPY byte for byte."""
    db = tmp_path / "kv.db"
    c = sqlite3.connect(db)
    c.executescript("""
        CREATE TABLE "Kv" ("id" INTEGER PRIMARY KEY, "Name" TEXT NOT NULL, "flag" BOOLEAN,
                           "score" REAL, "blob" BLOB, "note" TEXT DEFAULT 'x');
        INSERT INTO "Kv" VALUES (1, 'a	b\\c', 1, 0.1, x'00ff', NULL),
                                (2, 'line
break', 0, -0.5, x'01', 'ü'),
                                (5, 'e', NULL, 1e300, x'', 'y');
    """)
    c.commit()
    c.close()
    exp = tmp_path / "exp"
    export.export(str(db), str(exp))
    r = import_export(exp, pg_db)
    assert r["tables"]["Kv"]["passthrough"] is True
    verify_target(exp, pg_db)
    assert run_sql(pg_db, 'SELECT "Name", encode("blob", \'hex\'), "score"::text '
                          'FROM "Kv" ORDER BY id', fetch=True) == [
        ("a\tb\\c", "00ff", "0.1"), ("line\nbreak", "01", "-0.5"), ("e", "", "1e+300")]
    assert run_sql(pg_db, 'INSERT INTO "Kv" ("Name") VALUES (\'n\') RETURNING id, note',
                   fetch=True) == [(6, "x")]


@pytest.fixture(scope="module")
def larger_export(tmp_path_factory):
    return make_sample_export(tmp_path_factory.mktemp("kill"), pfa_records=80_000)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "existing"])
def test_killed_import_leaves_target_unchanged(larger_export, pg_db, mode):
    if mode == "existing":
        load_prisma_schema(pg_db)
    before = fingerprint(pg_db)
    exe = Path(sys.executable).with_name("pgcutover")
    proc = subprocess.Popen([str(exe), "import", str(larger_export), "--dsn", pg_db,
                             "--schema-mode", mode], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen = False
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        rows = run_sql(pg_db, "SELECT query FROM pg_stat_activity WHERE application_name = "
                              "'pgcutover' AND query LIKE 'COPY%%pfa_records%%'", fetch=True)
        if rows:
            seen = True
            time.sleep(0.3)
            break
        time.sleep(0.02)
    assert seen and proc.poll() is None, "import finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    deadline = time.time() + 30
    while run_sql(pg_db, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgcutover'",
                  fetch=True) and time.time() < deadline:
        time.sleep(0.1)
    assert fingerprint(pg_db) == before
    # and the next import works normally
    assert import_export(larger_export, pg_db, schema_mode=mode)["changed"]


def test_null_blob_roundtrip(tmp_path, pg_db):
    """NULL and empty BLOBs stay distinct (the import's digest check caught an export that
    wrote NULL as an empty bytea)."""
    db = tmp_path / "b.db"
    c = sqlite3.connect(db)
    c.executescript("CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB);"
                    "INSERT INTO b VALUES (1, x'00'), (2, NULL), (3, x'');")
    c.commit()
    c.close()
    exp = tmp_path / "exp"
    export.export(str(db), str(exp))
    import_export(exp, pg_db)
    assert run_sql(pg_db, "SELECT id FROM b WHERE data IS NULL", fetch=True) == [(2,)]
    verify_target(exp, pg_db)
