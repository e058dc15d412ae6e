"""Helpers for the target-side tests: real exports of real SQLite files, hand-edited
exports (re-sealed with correct sizes/SHA-256/digests so verify-export accepts them),
and a catalog + data fingerprint of a PostgreSQL database."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import psycopg2

from pgcutover import export, sample
from pgcutover.canonical import CellError, Digest, row_record
from pgcutover.manifest import load_manifest, write_manifest
from pgcutover.rows_codec import decode_line

REPO = Path(__file__).resolve().parents[1]
PRISMA_PG_SQL = REPO / "tests" / "sql" / "prisma_postgres_schema.sql"


def make_sample_export(base: Path, pfa_records: int = 0, seed: int = 1) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    db = base / "app.db"
    sample.generate(str(db), pfa_records=pfa_records, seed=seed)
    out = base / "export"
    export.export(str(db), str(out))
    return out


def copy_export(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    dst.chmod(0o700)
    return dst


def rows_file(export_dir: Path, table: str) -> Path:
    m = json.loads((export_dir / "manifest.json").read_text())
    return export_dir / m["tables"][table]["file"]


def edit_rows(export_dir: Path, table: str, edit, reseal_digest: bool = True):
    """Apply ``edit(list_of_lines) -> list_of_lines`` to a table's .rows file and re-seal
    the export (size, sha256, rows and - unless told not to - content digest)."""
    m = load_manifest(export_dir)
    t = m["tables"][table]
    path = export_dir / t["file"]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = edit(lines)
    data = "".join(lines).encode("utf-8")
    path.write_bytes(data)
    t["size"] = len(data)
    t["sha256"] = hashlib.sha256(data).hexdigest()
    t["rows"] = len(lines)
    if reseal_digest:
        d = Digest()
        storages = [c["storage"] for c in t["columns"]]
        logicals = [c["logical"] for c in t["columns"]]
        try:
            for line in lines:
                d.add(row_record(logicals, decode_line(line, storages)))
            t["content_digest"] = d.value()
        except CellError:
            pass  # a deliberately bad cell: the importer must stop before the digest
    del m["manifest_digest"]
    (export_dir / "manifest.json").unlink()
    write_manifest(export_dir, m)


def edit_manifest(export_dir: Path, edit):
    m = load_manifest(export_dir)
    del m["manifest_digest"]
    edit(m)
    (export_dir / "manifest.json").unlink()
    write_manifest(export_dir, m)


def set_cell(line: str, index: int, value: str) -> str:
    cells = line.rstrip("\n").split("\t")
    cells[index] = value
    return "\t".join(cells) + "\n"


def col_index(export_dir: Path, table: str, column: str) -> int:
    m = json.loads((export_dir / "manifest.json").read_text())
    return [c["name"] for c in m["tables"][table]["columns"]].index(column)


def run_sql(dsn: str, sql: str, params=None, fetch=False):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


def load_prisma_schema(dsn: str):
    run_sql(dsn, PRISMA_PG_SQL.read_text())


def fingerprint(dsn: str) -> dict:
    """Catalog (schemas, tables, columns, constraints, indexes, sequences) and data
    (per table: count + md5 of all rows in a stable order) of every non-system schema."""
    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("""SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'
                       AND nspname <> 'information_schema' ORDER BY 1""")
        out = {"schemas": [r[0] for r in cur.fetchall()]}
        cur.execute("""
            SELECT n.nspname, c.relname, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
            ORDER BY 1, 2""")
        out["relations"] = cur.fetchall()
        cur.execute("""
            SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default,
                   is_identity FROM information_schema.columns
            WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3""")
        out["columns"] = cur.fetchall()
        cur.execute("""
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
            FROM pg_constraint WHERE connamespace NOT IN
              (SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg\\_%'
               OR nspname = 'information_schema') ORDER BY 1, 2""")
        out["constraints"] = cur.fetchall()
        cur.execute("""SELECT schemaname, indexname, indexdef FROM pg_indexes
                       WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
                       ORDER BY 1, 2""")
        out["indexes"] = cur.fetchall()
        cur.execute("""SELECT schemaname, sequencename, last_value FROM pg_sequences
                       ORDER BY 1, 2""")
        out["sequences"] = cur.fetchall()
        data = {}
        for schema, rel, kind in out["relations"]:
            if kind != "r":
                continue
            q = f'"{schema}"."{rel}"'
            cur.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                        f"ORDER BY t::text), '')) FROM {q} t")
            data[f"{schema}.{rel}"] = cur.fetchone()
        out["data"] = data
        return out
    finally:
        conn.close()
