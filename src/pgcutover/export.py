"""Export: one consistent snapshot -> one ``.rows`` file per table + manifest.json.

Steps: private snapshot through the SQLite backup API (the source is opened
read-only and never written), analysis of the snapshot (blockers stop everything
before a byte is written), one streaming pass per table that writes the COPY text,
its SHA-256 and the content digest at once, manifest last (temp + fsync + rename).

Hot loop: the per-table row function is generated so that every column SQLite can
encode itself (TEXT escaping, INTEGER, BLOB hex, most digest tokens) is built in the
SELECT; Python only touches REAL (repr), JSON, TEXT timestamps and mixed columns.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import time
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, canonical, rows_codec, sqlite_source
from .analyze import analyze_conn
from .errors import BlockerError, PgcutoverError, SourceError, UsageError
from .manifest import FORMAT_NAME, FORMAT_VERSION, fsync_dir, rows_file_name, write_manifest
from .sqlite_source import qi

FLUSH_ROWS = 4096
MANIFEST_COLUMN_KEYS = ("name", "declared", "affinity", "storage", "notnull", "default",
                        "pk", "logical", "pg_type", "collate", "typeof", "nulls")


# -- the per-table scanner (shared with verify_source) ------------------------------

def _token_sql(q: str, logical: str, storage: str) -> str | None:
    """SQLite expression for the digest token, when SQLite can produce it exactly."""
    if storage == "integer" and logical in ("integer", "timestamp", "numeric"):
        return f"CASE WHEN {q} IS NULL THEN 'N' ELSE length({q})||':'||{q} END"
    if storage == "text" and logical == "text":
        return f"CASE WHEN {q} IS NULL THEN 'N' ELSE length({q})||':'||{q} END"
    if storage == "integer" and logical == "boolean":
        # anything but 0/1 gives a token no valid row has (analyze blocks it anyway)
        return (f"CASE WHEN {q} IS NULL THEN 'N' WHEN {q}=1 THEN '1:t' WHEN {q}=0 "
                f"THEN '1:f' ELSE '?'||quote({q}) END")
    if storage == "blob" and logical == "bytea":
        return f"CASE WHEN {q} IS NULL THEN 'N' ELSE (length({q})*2)||':'||lower(hex({q})) END"
    return None


def _copy_py(storage: str):
    if storage == "real":
        return lambda v: "\\N" if v is None else repr(v)
    return lambda v: rows_codec.encode_cell(v, storage)


def build_scanner(table: str, columns: list[dict], with_rows: bool, order_by: str):
    """Return (sql, row_function_factory).

    ``columns``: manifest column dicts (name, storage, logical, typeof).  The
    generated function consumes a cursor and returns (rows, s1, s2) while calling
    ``emit(lines)`` with lists of COPY lines (without newline) when ``with_rows``."""
    select: list[str] = []
    env: dict = {}
    line_parts: list = []   # ("sql", expr) or ("py", code)
    tok_parts: list = []
    raw_index: dict[int, int] = {}

    def raw(i, q):
        if i not in raw_index:
            raw_index[i] = len(select)
            select.append(q)
        return f"r[{raw_index[i]}]"

    for i, c in enumerate(columns):
        q = qi(c["name"])
        storage, logical = c["storage"], c["logical"]
        if with_rows:
            expr = rows_codec.copy_sql(q, storage)
            if expr is None and storage == "mixed" and not (c.get("typeof") or {}).get("real"):
                expr = rows_codec.copy_sql_mixed_no_real(q)
            if expr is not None:
                line_parts.append(("sql", expr))
            else:
                env[f"enc{i}"] = _copy_py(storage)
                line_parts.append(("py", f"enc{i}({raw(i, q)})"))
        expr = _token_sql(q, logical, storage)
        if expr is not None:
            tok_parts.append(("sql", expr))
        else:
            env[f"tok{i}"] = canonical.token_func(logical)
            tok_parts.append(("py", f"tok{i}({raw(i, q)})"))

    def merge(parts, sep_sql, sep_py):
        """Consecutive SQL parts become one selected string; returns python expr."""
        out, run = [], []

        def close():
            if run:
                select.append("''||" + f"||{sep_sql}||".join(run))
                out.append(f"r[{len(select) - 1}]")
                run.clear()
        for kind, e in parts:
            if kind == "sql":
                run.append(e)
            else:
                close()
                out.append(e)
        close()
        return f"+{sep_py}+".join(out) if out else "''"

    tok_expr = merge(tok_parts, "'|'", "'|'")
    line_expr = merge(line_parts, "char(9)", "'\\t'") if with_rows else None
    if not select:
        select.append("1")
    body = [
        "def scan(cur, emit):",
        "    s1 = s2 = n = 0",
        "    buf = []",
        "    append = buf.append",
        "    for r in cur:",
    ]
    if with_rows:
        body.append(f"        append({line_expr})")
    body += [
        f"        a, b = unpack(md5(({tok_expr}).encode()).digest())",
        "        s1 += a",
        "        s2 += b",
        "        n += 1",
    ]
    if with_rows:
        body += [f"        if len(buf) >= {FLUSH_ROWS}:",
                 "            emit(buf)",
                 "            buf.clear()",
                 "    if buf:",
                 "        emit(buf)"]
    body.append("    return n, s1, s2")
    env.update({"md5": hashlib.md5, "unpack": struct.Struct(">QQ").unpack})
    exec(compile("\n".join(body), f"<scanner {table}>", "exec"), env)  # noqa: S102
    sql = f"SELECT {', '.join(select)} FROM {qi(table)} ORDER BY {order_by}"
    return sql, env["scan"]


def order_by(schema: dict) -> str:
    if schema.get("without_rowid"):
        return ", ".join(qi(c) for c in schema["primary_key"])
    return "rowid"


def scan_table(conn, table: str, schema: dict, emit=None) -> tuple[int, str]:
    """(row count, content digest) of a table; COPY lines go to ``emit`` if given."""
    sql, scan = build_scanner(table, schema["columns"], emit is not None, order_by(schema))
    try:
        n, s1, s2 = scan(conn.execute(sql), emit or (lambda lines: None))
    except sqlite3.OperationalError as exc:
        if "decode" in str(exc).lower():
            raise BlockerError("invalid UTF-8 in TEXT", table=table) from None
        raise SourceError(f"reading table failed: {exc}", table=table) from None
    except canonical.CellError as exc:
        raise BlockerError(str(exc), table=table) from None
    return n, canonical.format_digest(n, s1, s2)


# -- output directory --------------------------------------------------------------

def prepare_out_dir(out_dir, create: bool = True) -> tuple[Path, bool]:
    """Refuse symlinks, files and non-empty directories; create 0700 if missing."""
    d = Path(out_dir)
    if d.is_symlink():
        raise UsageError(f"export directory is a symlink: {d}")
    if d.exists():
        if not d.is_dir():
            raise UsageError(f"export path exists and is not a directory: {d}")
        if any(d.iterdir()):
            raise UsageError(f"export directory is not empty: {d}")
        if create:
            os.chmod(d, 0o700)
        return d.resolve(), False
    if not d.parent.is_dir():
        raise UsageError(f"parent directory of the export does not exist: {d.parent}")
    if create:
        d.mkdir(mode=0o700)
        os.chmod(d, 0o700)
    return d.absolute(), True


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _manifest_table(entry: dict) -> dict:
    out = {k: entry[k] for k in ("without_rowid", "primary_key", "unique", "indexes",
                                 "foreign_keys")}
    out["columns"] = [{k: c.get(k) for k in MANIFEST_COLUMN_KEYS} for c in entry["columns"]]
    if entry.get("autoincrement"):
        out["autoincrement"] = entry["autoincrement"]
    return out


def _raise_blockers(report: dict):
    b = report["blockers"]
    first = b[0]
    raise BlockerError(
        "%d blocker(s) found: %s" % (len(b), "; ".join(
            "%s%s: %s (%d)" % (x["table"] or "database",
                               "." + x["column"] if x.get("column") else "",
                               x["reason"], x["count"]) for x in b[:10])),
        table=first["table"], column=first.get("column"),
        key=(first["keys"][0] if first.get("keys") else None), details=b)


def _write_table(conn, out: Path, fname: str, table: str, entry: dict) -> dict:
    tmp = out / f".{fname}.tmp"
    sha = hashlib.sha256()
    size = 0
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=0) as f:
        def emit(lines):
            nonlocal size
            data = ("\n".join(lines) + "\n").encode("utf-8")
            sha.update(data)
            f.write(data)
            size += len(data)
        n, digest = scan_table(conn, table, entry, emit)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / fname)
    return {"file": fname, "rows": n, "size": size, "sha256": sha.hexdigest(),
            "content_digest": digest}


def export(sqlite_path, out_dir, progress=None) -> dict:
    """Export ``sqlite_path`` into the new/empty directory ``out_dir`` (docs/FORMAT.md)."""
    t0 = time.monotonic()
    src = sqlite_source.source_path(sqlite_path)
    out, created = prepare_out_dir(out_dir)
    snap = out / f".snapshot-{os.getpid()}.sqlite.tmp"
    written: list[Path] = []
    complete = False
    try:
        how = sqlite_source.snapshot(src, snap)
        snap_sha = hashlib.sha256()
        with open(snap, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                snap_sha.update(chunk)
        conn = sqlite_source.open_snapshot(snap)
        try:
            report = analyze_conn(conn, path=None, sizes=False, integrity="quick_check")
            if report["blockers"]:
                _raise_blockers(report)
            tables = {}
            for pos, table in enumerate(report["load_order"], start=1):
                entry = report["tables"][table]
                fname = rows_file_name(pos, table)
                written.append(out / fname)
                t1 = time.monotonic()
                info = _write_table(conn, out, fname, table, entry)
                if info["rows"] != entry["rows"]:  # same snapshot: cannot differ
                    raise SourceError("row count changed inside the snapshot", table=table)
                dt = time.monotonic() - t1
                if progress:
                    progress("%s: %d rows, %.1f ms, %d rows/s" % (
                        table, info["rows"], dt * 1000, info["rows"] / dt if dt else 0))
                info.update(_manifest_table(entry))
                tables[table] = info
            manifest = {
                "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                "created_at": _now_iso(), "tool_version": __version__,
                "source": {"path": str(src), "sha256": snap_sha.hexdigest(),
                           "size": snap.stat().st_size,
                           "sqlite_version": sqlite3.sqlite_version,
                           "page_size": report["source"]["page_size"],
                           "encoding": report["source"]["encoding"],
                           "snapshot": how},
                "load_order": report["load_order"], "fk_cycles": report["fk_cycles"],
                "self_references": report["self_references"],
                "warnings": report["warnings"],
                "tables": tables,
            }
        finally:
            conn.close()
        fsync_dir(out)
        manifest = write_manifest(out, manifest)
        complete = True
    finally:
        if snap.exists():
            snap.unlink()
        if not complete:
            for p in written + [out / f".{p.name}.tmp" for p in written]:
                if p.exists():
                    p.unlink()
            if created:
                try:
                    out.rmdir()
                except OSError:
                    pass
    total = sum(t["rows"] for t in manifest["tables"].values())
    secs = time.monotonic() - t0
    return {"changed": True, "export_dir": str(out), "manifest": str(out / "manifest.json"),
            "manifest_digest": manifest["manifest_digest"],
            "source_sha256": manifest["source"]["sha256"],
            "tables": {t: {"rows": v["rows"], "file": v["file"], "sha256": v["sha256"],
                           "content_digest": v["content_digest"]}
                       for t, v in manifest["tables"].items()},
            "total_rows": total, "warnings": manifest["warnings"],
            "seconds": round(secs, 3),
            "rows_per_second": int(total / secs) if secs else None}


def plan_export(sqlite_path, out_dir) -> dict:
    """Check mode: analyze the source (read-only) and list what export would write."""
    from .analyze import analyze
    src = sqlite_source.source_path(sqlite_path)
    out, _created = prepare_out_dir(out_dir, create=False)
    report = analyze(src, sizes=False)
    files = {t: {"file": rows_file_name(i, t), "rows": report["tables"][t]["rows"]}
             for i, t in enumerate(report["load_order"], start=1)}
    return {"changed": not report["blockers"], "export_dir": str(out), "would_write": files,
            "total_rows": report["total_rows"], "blockers": report["blockers"],
            "warnings": report["warnings"]}


__all__ = ["export", "plan_export", "scan_table", "build_scanner", "prepare_out_dir",
           "PgcutoverError"]
