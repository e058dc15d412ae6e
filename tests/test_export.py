"""export: the sample, lossless round trip of nasty values, read-only source, refusals."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat

import pytest

from pgcutover import canonical, rows_codec, sample
from pgcutover.errors import BlockerError, UsageError
from pgcutover.export import export, plan_export
from pgcutover.manifest import load_manifest
from pgcutover.verify_export import verify_export
from pgcutover.verify_source import verify_source


def _fingerprint(p):
    return hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns


def _read_rows(d, manifest, table):
    t = manifest["tables"][table]
    storages = [c["storage"] for c in t["columns"]]
    text = (d / t["file"]).read_text(encoding="utf-8")
    # split on "\n" only: str.splitlines() would also split on U+2028 and friends
    return [rows_codec.decode_line(line, storages) for line in text.split("\n")[:-1]]


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory):
    base = tmp_path_factory.mktemp("exp")
    db = base / "app.db"
    sample.generate(db, pfa_records=3000)
    before = _fingerprint(db)
    lines = []
    summary = export(db, base / "out", progress=lines.append)
    return db, base / "out", summary, before, lines


def test_sample_export_files_and_manifest(sample_export):
    db, out, summary, before, lines = sample_export
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    m = load_manifest(out)
    names = sorted(os.listdir(out))
    assert names == sorted(["manifest.json"] + [t["file"] for t in m["tables"].values()])
    for n in names:
        assert stat.S_IMODE((out / n).stat().st_mode) == 0o600
    assert m["tables"]["users"]["rows"] == 7
    assert m["tables"]["pfa_records"]["rows"] == 3000
    assert m["tables"]["users"]["file"] == "002-users.rows"
    assert m["load_order"][0] == "_prisma_migrations"
    assert summary["total_rows"] == 67 + 4 + 3000
    assert m["tables"]["sync_logs"]["autoincrement"]["high_water"] == 1
    assert len(lines) == 13 and lines[1].startswith("users: 7 rows")
    users = {c["name"]: c for c in m["tables"]["users"]["columns"]}
    assert users["createdAt"]["storage"] == "mixed"
    assert m["tables"]["users"]["unique"][0]["columns"] in (["email"], ["username"])
    assert verify_export(out)["ok"]
    assert verify_source(out, db)["ok"]


def test_source_untouched(sample_export):
    db, out, summary, before, _ = sample_export
    assert _fingerprint(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["app.db", "out"]


def test_rows_decode_to_exact_sqlite_values_and_digest(sample_export):
    db, out, _summary, _before, _ = sample_export
    m = load_manifest(out)
    conn = sqlite3.connect(db)
    for table, t in m["tables"].items():
        got = _read_rows(out, m, table)
        cols = ", ".join(f'"{c["name"]}"' for c in t["columns"])
        want = [list(r) for r in conn.execute(f'SELECT {cols} FROM "{table}" ORDER BY rowid')]
        assert got == want, table
        assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in want]
        d = canonical.Digest()
        for r in want:
            d.add(canonical.row_record([c["logical"] for c in t["columns"]], r))
        assert d.value() == t["content_digest"], table
        assert hashlib.sha256((out / t["file"]).read_bytes()).hexdigest() == t["sha256"]


NASTY = [
    (2 ** 63 - 1, 1.5, "tab\there\nnew\rline \\ back \\N", b"\x00\x01\\\t\n", "{}"),
    (-(2 ** 63), float("inf"), "", b"", "[1.0, 1e2]"),
    (0, float("-inf"), "x" * (1 << 20), bytes(range(256)), '{"b":1,"a":{"a":2}}'),
    (None, float("nan"), "üñí©ødé 😀 \u2028", None, None),     # NaN is stored as NULL
    (7, -0.0, "\\", b"\\x00", '"s"'),
    (8, 5e-324, "end\\", None, "null"),
]


@pytest.fixture
def nasty_db(tmp_path):
    p = tmp_path / "nasty.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE n (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, "
                 "b BLOB, j JSON, m)")
    for k, row in enumerate(NASTY):
        mixed = [1, 2.5, "t\tx", b"\x00", None, "9"][k]
        conn.execute("INSERT INTO n (i, f, s, b, j, m) VALUES (?,?,?,?,?,?)", row + (mixed,))
    conn.execute("CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID")
    conn.executemany("INSERT INTO w VALUES (?,?)", [("b", 2), ("a", 1)])
    conn.commit()
    conn.close()
    return p


def test_nasty_values_round_trip(nasty_db, tmp_path):
    with pytest.raises(BlockerError) as exc:           # BLOB mixed into column m
        export(nasty_db, tmp_path / "out1")
    assert exc.value.table == "n" and exc.value.column == "m"
    assert not (tmp_path / "out1").exists()            # created by us, removed again
    conn = sqlite3.connect(nasty_db)
    conn.execute("UPDATE n SET m = 'blob was here' WHERE typeof(m) = 'blob'")
    conn.commit()
    conn.close()
    out = tmp_path / "out2"
    export(nasty_db, out)
    m = load_manifest(out)
    cols = {c["name"]: c for c in m["tables"]["n"]["columns"]}
    assert cols["m"]["storage"] == "mixed" and cols["m"]["logical"] == "text"
    assert cols["f"]["storage"] == "real" and cols["b"]["storage"] == "blob"
    assert cols["j"]["logical"] == "json"
    conn = sqlite3.connect(nasty_db)
    for table in ("n", "w"):
        want = [list(r) for r in conn.execute(
            f"SELECT * FROM {table} ORDER BY {'rowid' if table == 'n' else 'k'}")]
        got = _read_rows(out, m, table)
        assert got == want
        assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in want]
    raw = (out / m["tables"]["n"]["file"]).read_bytes()
    assert raw.count(b"\n") == len(NASTY)
    assert b"tab\\there\\nnew\\rline \\\\ back \\\\N" in raw
    assert b"\\\\x00015c090a" in raw                   # bytea hex, COPY-escaped
    assert verify_source(out, nasty_db)["ok"]


@pytest.mark.parametrize("bad_sql,column", [
    ("INSERT INTO t (s) VALUES ('a' || char(0) || 'b')", "s"),
    ("INSERT INTO t (s) VALUES (CAST(x'ff' AS TEXT))", "s"),
    ("INSERT INTO t (ts) VALUES ('not a time')", "ts"),
])
def test_blockers_write_nothing(tmp_path, bad_sql, column):
    p = tmp_path / "b.db"
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, ts DATETIME)")
    conn.execute("INSERT INTO t (s, ts) VALUES ('fine', 0)")
    conn.execute(bad_sql)
    conn.commit()
    conn.close()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BlockerError) as exc:
        export(p, out)
    assert (exc.value.table, exc.value.column, exc.value.key) == ("t", column, 2)
    assert list(out.iterdir()) == []
    assert "not a time" not in str(exc.value)


def test_refusals(tmp_path, nasty_db):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError):
        export(nasty_db, tmp_path / "full")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError):
        export(nasty_db, tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError):
        export(nasty_db, tmp_path / "file")
    with pytest.raises(UsageError):
        export(tmp_path / "missing.db", tmp_path / "o")
    with pytest.raises(UsageError):
        export(nasty_db, tmp_path / "no" / "parent")


def test_wal_source_gets_no_side_files(tmp_path):
    p = tmp_path / "wal.db"
    sample.generate(p)
    conn = sqlite3.connect(p)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    conn.close()                                       # clean close removes -wal/-shm
    assert sorted(x.name for x in tmp_path.iterdir()) == ["wal.db"]
    before = _fingerprint(p)
    export(p, tmp_path / "out")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out", "wal.db"]
    assert _fingerprint(p) == before
    assert verify_source(tmp_path / "out", p)["ok"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out", "wal.db"]


def test_wal_with_open_writer_exports_committed_state(tmp_path):
    p = tmp_path / "wal.db"
    sample.generate(p)
    w = sqlite3.connect(p, isolation_level=None)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("DELETE FROM field_configurations")       # committed, only in the -wal
    w.execute("BEGIN")
    w.execute("DELETE FROM users WHERE username != 'admin'")   # NOT committed
    m = None
    try:
        export(p, tmp_path / "out")
        m = load_manifest(tmp_path / "out")
    finally:
        w.execute("ROLLBACK")
        w.close()
    assert m["tables"]["field_configurations"]["rows"] == 0
    assert m["tables"]["users"]["rows"] == 7


def test_check_mode_plan_writes_nothing(tmp_path, nasty_db):
    out = tmp_path / "out"
    plan = plan_export(nasty_db, out)
    assert not out.exists()
    assert plan["would_write"]["n"]["file"] == "001-n.rows"
    assert plan["blockers"] and plan["blockers"][0]["column"] == "m"


def test_cli_export_and_exit_codes(tmp_path, nasty_db):
    import subprocess
    import sys
    db = tmp_path / "app.db"
    sample.generate(db)
    run = lambda *a: subprocess.run([sys.executable, "-m", "pgcutover.cli", *a],  # noqa: E731
                                    capture_output=True, text=True)
    r = run("export", str(db), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total_rows"] == 71
    assert "users: 7 rows" in r.stderr
    assert run("verify-export", str(tmp_path / "o")).returncode == 0
    r = run("analyze", str(nasty_db), "--out", str(tmp_path / "a.json"))
    assert r.returncode == 3 and json.loads((tmp_path / "a.json").read_text())["blockers"]
    assert run("export", str(db), "--out", str(tmp_path / "o")).returncode == 2


def test_split_scan_gives_identical_files(tmp_path, monkeypatch):
    """Big tables are scanned by two processes and aggregated by two threads; the
    result must be byte-identical to the single-process export."""
    from pgcutover import analyze as analyze_mod
    from pgcutover import export as export_mod
    db = tmp_path / "app.db"
    sample.generate(db, pfa_records=3000)
    export(db, tmp_path / "single")
    monkeypatch.setattr(export_mod, "SPLIT_SCAN_MIN_ROWIDS", 100)
    monkeypatch.setattr(analyze_mod, "SPLIT_MIN_ROWIDS", 100)
    export(db, tmp_path / "split")
    a, b = load_manifest(tmp_path / "single"), load_manifest(tmp_path / "split")
    for t in a["tables"]:
        assert a["tables"][t]["sha256"] == b["tables"][t]["sha256"], t
        assert a["tables"][t]["content_digest"] == b["tables"][t]["content_digest"], t
        assert a["tables"][t]["columns"] == b["tables"][t]["columns"], t
    assert sorted(os.listdir(tmp_path / "split")) == sorted(os.listdir(tmp_path / "single"))


def test_split_scan_reports_blockers_with_keys(tmp_path, monkeypatch):
    from pgcutover import export as export_mod
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    conn.executemany("INSERT INTO t (s) VALUES (?)", [("row %d" % i,) for i in range(1000)])
    conn.execute("UPDATE t SET s = 'a' || char(0) WHERE id = 900")
    conn.execute("UPDATE t SET s = CAST(x'c3' AS TEXT) WHERE id = 100")
    conn.commit()
    conn.close()
    monkeypatch.setattr(export_mod, "SPLIT_SCAN_MIN_ROWIDS", 100)
    with pytest.raises(BlockerError) as exc:
        export(db, tmp_path / "out")
    assert exc.value.table == "t" and exc.value.column == "s"
    assert exc.value.key in (100, 900)
    assert not (tmp_path / "out").exists()
