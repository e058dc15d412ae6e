"""Export: one consistent snapshot -> one ``.rows`` file per table + manifest.json.

Steps: private snapshot through the SQLite backup API (the source is opened
read-only and never written), analysis of the snapshot (blockers stop everything
before a byte is written), one streaming pass per table that writes the COPY text,
its SHA-256 and the content digest at once, manifest last (temp + fsync + rename).

Hot loop: the per-table row function is generated so that every column SQLite can
encode itself (TEXT escaping, INTEGER, BLOB hex) is built in the SELECT; the digest
record's common cells are packed inline (struct), the rest go through canonical.cell.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, canonical, rows_codec, sqlite_source
from .analyze import analyze_conn, run_pragmas
from .errors import BlockerError, PgcutoverError, SourceError, UsageError
from .manifest import FORMAT_NAME, FORMAT_VERSION, fsync_dir, rows_file_name, write_manifest
from .sqlite_source import qi

FLUSH_ROWS = 4096
SPLIT_SCAN_MIN_ROWIDS = 200_000
MANIFEST_COLUMN_KEYS = ("name", "declared", "affinity", "storage", "notnull", "default",
                        "pk", "logical", "pg_type", "collate", "typeof", "nulls")


# -- the per-table scanner (shared with verify_source) ------------------------------
#
# Measured on the 1M-row sample: every SQLite scalar function call per cell costs
# more than the equivalent Python, and concatenating a whole line in SQL is
# quadratic.  So SQLite only hands over values (INTEGER already CAST to TEXT), and
# the generated per-table loop builds the line with one '\t'.join, checks the whole
# line once for characters that need COPY escaping (rare: then the exact per-cell
# encoder runs), and packs the digest record's cells inline.

Z = "\x00"          # NULL marker while joining: TEXT cannot hold NUL (a blocker)


class _RowProblem(Exception):
    def __init__(self, index, reason):
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _mixed_fast(v):
    """Tagged cell without escaping (the line check sends specials to the slow path)."""
    if v is None:
        return Z
    t = type(v)
    if t is str:
        return "t" + v
    if t is int:
        return "i" + str(v)
    if t is float:
        return "r" + repr(v)
    return "b\\\\x" + v.hex()


def _cell_kind(logical: str, storage: str) -> str:
    """How the scanner builds a column's digest cell: inline for the common storage /
    logical pairs, through canonical.cell_func otherwise."""
    if storage == "integer" and logical in ("integer", "timestamp", "boolean"):
        return logical
    if storage == "text" and logical == "text":
        return "text"
    if storage == "real" and logical == "float":
        return "float"
    return "py"


def build_scanner(table: str, columns: list[dict], with_rows: bool, order_by: str,
                  where: str | None = None):
    """Return (sql, scan).  ``scan(cursor, emit)`` returns (rows, s1, s2) and, when
    ``with_rows``, calls ``emit(lines)`` with lists of COPY lines (no newline)."""
    select, lines, cells = [], [], []
    env: dict = {"Z": Z, "H": canonical.pack_hdr, "I8": canonical.pack_i8, "F8": canonical.pack_f8,
                 "E": canonical.PG_EPOCH_MS,
                 "B": {"1": canonical.BOOL_CELL[True], "0": canonical.BOOL_CELL[False]}}
    storages = []
    for i, c in enumerate(columns):
        q = qi(c["name"])
        storage, logical = c["storage"], c["logical"]
        kind = _cell_kind(logical, storage)
        storages.append(storage)
        v = f"c{i}"
        env[f"N{i}"] = canonical.NULL_CELL[logical]
        as_text = storage == "integer" and kind != "py"
        select.append(f"CAST({q} AS TEXT)" if as_text else q)
        if storage in ("text",) or as_text:
            lines.append(f"({v} if {v} is not None else Z)")
        elif storage == "integer":
            lines.append(f"(str({v}) if {v} is not None else Z)")
        elif storage == "real":
            lines.append(f"(repr({v}) if {v} is not None else Z)")
        else:
            env["M"] = _mixed_fast
            lines.append(f"M({v})")
        # the digest cell (canonical.cell): OID, length, binary value; INTEGER storage
        # arrives as text (CAST for the COPY line), a bad boolean gives a cell no
        # PostgreSQL value has (analyze blocks it before any export)
        oid = canonical.OID[logical]
        if kind == "integer":
            cells.append(f"(N{i} if {v} is None else I8({oid}, 8, int({v})))")
        elif kind == "timestamp":
            cells.append(f"(N{i} if {v} is None else I8({oid}, 8, (int({v}) - E) * 1000))")
        elif kind == "boolean":
            cells.append(f"(N{i} if {v} is None else B.get({v}) or b'?' + {v}.encode())")
        elif kind == "text":
            cells.append(f"(N{i} if {v} is None else H({oid}, len(e{i} := {v}.encode())) + e{i})")
        elif kind == "float":
            cells.append(f"(N{i} if {v} is None else F8({oid}, 8, {v}))")
        else:
            env[f"T{i}"] = canonical.cell_func(logical)
            cells.append(f"T{i}({v})")
    k = len(columns)
    unpack_row = ", ".join(f"c{i}" for i in range(k)) + ("," if k == 1 else "")
    body = ["def scan(cur, emit):",
            "    s1 = s2 = n = 0",
            "    buf = []",
            "    append = buf.append",
            "    for r in cur:",
            f"        {unpack_row} = r"]
    if with_rows:
        body += [
            f"        line = '\\t'.join(({', '.join(lines)},))",
            f"        if '\\\\' in line or '\\n' in line or '\\r' in line or "
            f"line.count('\\t') != {k - 1}:",
            "            line = slow_line(r)",
            "        elif Z in line:",
            "            if line.count(Z) != r.count(None):",
            "                line = slow_line(r)",
            "            else:",
            "                line = line.replace(Z, '\\\\N')",
            "        append(line)",
            f"        if len(buf) >= {FLUSH_ROWS}:",
            "            emit(buf)",
            "            buf.clear()"]
    else:
        body.append("        nul_check(r)")
    body += [f"        a, b = unpack(sha(b''.join((R, {', '.join(cells)}))).digest())",
             "        s1 += a",
             "        s2 += b",
             "        n += 1"]
    if with_rows:
        body += ["    if buf:", "        emit(buf)"]
    body.append("    return n, s1, s2")

    def slow_line(r):
        out = []
        for i, (val, st) in enumerate(zip(r, storages)):
            if type(val) is str and "\x00" in val:
                raise _RowProblem(i, "NUL character inside TEXT (PostgreSQL text cannot hold it)")
            if st == "integer" and type(val) is str:
                out.append(val)  # CAST to TEXT by SQLite: plain decimal digits
            else:
                out.append(rows_codec.encode_cell(val, st))
        return "\t".join(out)

    def nul_check(r):
        for i, val in enumerate(r):
            if type(val) is str and "\x00" in val:
                raise _RowProblem(i, "NUL character inside TEXT (PostgreSQL text cannot hold it)")

    env.update({"sha": hashlib.sha256, "unpack": canonical.unpack_sums,
                "R": canonical.row_header(len(columns)),
                "slow_line": slow_line, "nul_check": nul_check})
    source = "\n".join(body)
    exec(compile(source, f"<scanner {table}>", "exec"), env)  # noqa: S102
    env["scan"].source = source  # for debugging and tests
    sql = (f"SELECT {', '.join(select) or '1'} FROM {qi(table)}"
           + (f" WHERE {where}" if where else "") + f" ORDER BY {order_by}")
    return sql, env["scan"]


def order_by(schema: dict) -> str:
    if schema.get("without_rowid"):
        return ", ".join(qi(c) for c in schema["primary_key"])
    return "rowid"


def _key_schema(table: str, schema: dict) -> dict:
    return {"name": table, "primary_key": schema.get("primary_key") or [],
            "without_rowid": schema.get("without_rowid"),
            "autoincrement": schema.get("autoincrement")}


def _locate_utf8(conn, table: str, schema: dict):
    from .analyze import _check_utf8  # the same check analyze runs
    found: list = []
    s = _key_schema(table, schema)
    old = conn.text_factory
    conn.text_factory = bytes
    try:
        for c in schema["columns"]:
            _check_utf8(conn, s, c["name"], found)
    finally:
        conn.text_factory = old
    return found


def scan_sums(conn, table: str, schema: dict, emit=None, where=None) -> tuple[int, int, int]:
    """(rows, S1, S2) of a table (or a rowid range of it); COPY lines go to ``emit``."""
    cols = schema["columns"]
    sql, scan = build_scanner(table, cols, emit is not None, order_by(schema), where)
    try:
        return scan(conn.execute(sql), emit or (lambda lines: None))
    except sqlite3.OperationalError as exc:
        if "decode" in str(exc).lower():
            found = _locate_utf8(conn, table, schema)
            b = found[0] if found else {"column": None, "keys": []}
            raise BlockerError("invalid UTF-8 in TEXT", table=table, column=b["column"],
                               key=b["keys"][0] if b["keys"] else None,
                               details=found) from None
        raise SourceError(f"reading table failed: {exc}", table=table) from None
    except _RowProblem as exc:
        from .analyze import _keys
        col = cols[exc.index]["name"]
        q = qi(col)
        keys = _keys(conn, _key_schema(table, schema),
                     f"typeof({q})='text' AND instr(CAST({q} AS BLOB), x'00')>0")
        raise BlockerError(exc.reason, table=table, column=col,
                           key=keys[0] if keys else None,
                           details=[{"table": table, "column": col, "reason": exc.reason,
                                     "keys": keys}]) from None
    except canonical.CellError as exc:
        raise BlockerError(str(exc), table=table) from None


def scan_table(conn, table: str, schema: dict, emit=None) -> tuple[int, str]:
    """(row count, content digest) of a table; COPY lines go to ``emit`` if given."""
    n, s1, s2 = scan_sums(conn, table, schema, emit)
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


class _Sink:
    """Writes COPY lines to a new 0600 file, hashing them on the way."""

    def __init__(self, path: Path, hash_it: bool = True):
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.f = os.fdopen(fd, "wb", buffering=0)
        self.sha = hashlib.sha256() if hash_it else None
        self.size = 0

    def __call__(self, lines):
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self.sha:
            self.sha.update(data)
        self.f.write(data)
        self.size += len(data)

    def close(self, sync: bool = True):
        if sync:
            self.f.flush()
            os.fsync(self.f.fileno())
        self.f.close()


def _scan_part(snap: str, table: str, entry: dict, where: str, part: str | None):
    """Worker process: one rowid range of a table (into its own part file)."""
    conn = sqlite_source.open_snapshot(snap)
    sink = _Sink(Path(part), hash_it=False) if part else None
    try:
        n, s1, s2 = scan_sums(conn, table, entry, sink, where)
    finally:
        if sink:
            sink.close(sync=False)
        conn.close()
    return n, s1, s2


def _run_halves(snap, table: str, entry: dict, mid: int, parts) -> tuple[int, int, int]:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
        futs = [ex.submit(_scan_part, str(snap), table, entry, w, p)
                for w, p in zip((f"rowid <= {mid}", f"rowid > {mid}"), parts)]
        res = [f.result() for f in futs]
    return (sum(r[0] for r in res), sum(r[1] for r in res), sum(r[2] for r in res))


def snapshot_digest(conn, snap, table: str, entry: dict) -> tuple[int, str]:
    """Content digest of a table of a private snapshot, big tables on both cores."""
    mid = _split_point(conn, table, entry)
    if mid is None:
        return scan_table(conn, table, entry)
    n, s1, s2 = _run_halves(snap, table, entry, mid, (None, None))
    return n, canonical.format_digest(n, s1, s2)


def _split_point(conn, table: str, entry: dict):
    if entry.get("without_rowid") or (os.cpu_count() or 1) < 2:
        return None
    lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {qi(table)}").fetchone()
    if lo is None or hi - lo < SPLIT_SCAN_MIN_ROWIDS:
        return None
    return (lo + hi) // 2


def _write_table(conn, out: Path, fname: str, table: str, entry: dict, snap: Path) -> dict:
    tmp = out / f".{fname}.tmp"
    mid = _split_point(conn, table, entry)
    if mid is None:
        sink = _Sink(tmp)
        n, s1, s2 = scan_sums(conn, table, entry, sink)
        sink.close()
    else:
        # two processes on the two rowid halves (Python work is the bottleneck and
        # there are two cores), then the halves are joined in order and hashed
        parts = [out / f".{fname}.part{i}.tmp" for i in (1, 2)]
        try:
            n, s1, s2 = _run_halves(snap, table, entry, mid, [str(p) for p in parts])
            sink = _Sink(tmp)
            for p in parts:
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        sink.sha.update(chunk)
                        sink.f.write(chunk)
                        sink.size += len(chunk)
            sink.close()
        finally:
            for p in parts:
                if p.exists():
                    p.unlink()
    os.replace(tmp, out / fname)
    return {"file": fname, "rows": n, "size": sink.size, "sha256": sink.sha.hexdigest(),
            "content_digest": canonical.format_digest(n, s1, s2)}


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _snapshot_pragmas(path):
    conn = sqlite_source.open_snapshot(path)
    try:
        return run_pragmas(conn, "quick_check")
    finally:
        conn.close()


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
        # Both cores: hashing the snapshot and SQLite's own checks (both release the
        # GIL) run beside the per-column analysis.
        pool = ThreadPoolExecutor(max_workers=2)
        sha_future = pool.submit(_sha256_file, snap)
        pragma_future = pool.submit(_snapshot_pragmas, snap)
        pool.shutdown(wait=False)
        conn = sqlite_source.open_snapshot(snap)
        try:
            report = analyze_conn(conn, path=None, sizes=False, integrity="quick_check",
                                  text_checks=False, pragmas=pragma_future.result,
                                  split_path=snap)
            snap_sha = sha_future.result()
            if report["blockers"]:
                _raise_blockers(report)
            tables = {}
            for pos, table in enumerate(report["load_order"], start=1):
                entry = report["tables"][table]
                fname = rows_file_name(pos, table)
                written.append(out / fname)
                t1 = time.monotonic()
                info = _write_table(conn, out, fname, table, entry, snap)
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
                "source": {"path": str(src), "sha256": snap_sha,
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
