"""verify-source: the SQLite source still holds exactly what the export holds.

Recomputes each table's content digest from the live file (read-only, one read
transaction) with the same scanner the export used, and compares it with the
manifest.  Equal digests and storage classes prove nobody wrote since the export;
this is the check to run after the application is stopped and before the import.
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from . import sqlite_source
from .analyze import _column_stats
from .errors import BlockerError, ExportVerificationError, SourceError
from .export import scan_table, snapshot_digest
from .manifest import load_manifest


def _compare(conn, manifest: dict, snap=None) -> tuple[dict, list]:
    live = {t["name"]: t for t in sqlite_source.tables(conn)}
    results, problems = {}, []
    for table in manifest["load_order"]:
        m = manifest["tables"][table]
        res = {"rows_expected": m["rows"], "ok": False}
        results[table] = res
        if table not in live:
            problems.append({"table": table, "problem": "missing_table"})
            continue
        schema = sqlite_source.table_schema(conn, table, live[table]["sql"])
        names = [c["name"] for c in schema["columns"]]
        if names != [c["name"] for c in m["columns"]]:
            problems.append({"table": table, "problem": "columns_changed"})
            continue
        n, stats = _column_stats(conn, schema, text_checks=False, split_path=snap)
        res["rows"] = n
        changed = [c["name"] for c, st in zip(m["columns"], stats)
                   if st["typeof"] != (c.get("typeof") or {})]
        if changed:
            # storage classes differ: the data changed (and the scan plan would not fit)
            problems.append({"table": table, "problem": "content_changed",
                             "columns": changed, "rows": n, "expected_rows": m["rows"]})
            continue
        try:
            n, digest = (snapshot_digest(conn, snap, table, m) if snap
                         else scan_table(conn, table, m))
        except BlockerError as exc:
            problems.append({"table": table, "problem": "content_changed",
                             "reason": exc.message})
            continue
        res["content_digest"] = digest
        if n != m["rows"] or digest != m["content_digest"]:
            problems.append({"table": table, "problem": "content_changed", "rows": n,
                             "expected_rows": m["rows"]})
            continue
        res["ok"] = True
    for extra in sorted(set(live) - set(manifest["tables"])):
        problems.append({"table": extra, "problem": "extra_table"})
    return results, problems


def verify_source(export_dir, sqlite_path, parallel: bool = True) -> dict:
    """``parallel``: verify a private backup-API snapshot (one point in time, like
    the export) with big tables on both cores, in a 0700 temp directory next to
    the export; otherwise read the source in one read transaction, one core."""
    manifest = load_manifest(export_dir)
    src = sqlite_source.source_path(sqlite_path)
    if parallel:
        tmpdir = Path(tempfile.mkdtemp(prefix=".pgcutover-verify-",
                                       dir=Path(export_dir).resolve().parent))
        snap = tmpdir / "snapshot.sqlite"
        try:
            sqlite_source.snapshot(src, snap)
            conn = sqlite_source.open_snapshot(snap)
            try:
                results, problems = _compare(conn, manifest, snap)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"cannot read SQLite source: {exc}") from None
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        conn = sqlite_source.open_readonly(src)
        try:
            conn.execute("BEGIN")
            try:
                results, problems = _compare(conn, manifest)
            finally:
                conn.execute("ROLLBACK")
            if sqlite_source.changed_since_open(conn):
                problems.append({"table": None, "problem": "source_changed_during_check"})
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"cannot read SQLite source: {exc}") from None
        finally:
            conn.close()
    report = {"ok": not problems, "sqlite_path": str(src),
              "manifest_digest": manifest["manifest_digest"], "tables": results,
              "problems": problems}
    if problems:
        raise ExportVerificationError(
            "SQLite source differs from the export: " + "; ".join(
                f"{p['table']}: {p['problem']}" for p in problems),
            table=problems[0]["table"], details=problems)
    return report
