"""Pre-migration analysis: what is in the SQLite file and what cannot move as is.

One read transaction (or the exporter's private snapshot), a handful of aggregate
queries per table (storage classes, NUL, non-ASCII candidates, per-type range
checks) and Python checks only for the cells that need them (TEXT timestamps, JSON,
non-ASCII text, constrained numerics).  Blockers name table, column and key
(primary key values, or rowid), never the offending value.
"""
from __future__ import annotations

import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from . import __version__, canonical, sqlite_source, typeplan
from .errors import SourceError
from .sqlite_source import qi

MAX_KEYS = 20
PG_IDENT_MAX = 63
_NON_ASCII_GLOB = "*[^\x01-\x7f]*"


def _lenient_text(b: bytes) -> str:
    # analyze must survive invalid UTF-8 to report it; the export path uses str
    return b.decode("utf-8", "backslashreplace")


def _key_sql(schema: dict) -> tuple[str, list[str]]:
    if schema["primary_key"] and (schema["without_rowid"] or not schema["autoincrement"]):
        names = schema["primary_key"]
        return ", ".join(qi(n) for n in names), names
    return "rowid", ["rowid"]


def _keys(conn, schema, where: str, params=()) -> list:
    sel, names = _key_sql(schema)
    rows = conn.execute(f"SELECT {sel} FROM {qi(schema['name'])} WHERE {where} "
                        f"LIMIT {MAX_KEYS}", params).fetchall()
    return [r[0] if len(names) == 1 else dict(zip(names, r)) for r in rows]


def _blocker(out, table, column, reason, count, keys):
    out.append({"table": table, "column": column, "reason": reason, "count": count,
                "keys": keys})


_PACK = 1 << 32
SPLIT_MIN_ROWIDS = 100_000


def aggregate(conn, schema: dict, items: list[str], params=(), split_path=None) -> list:
    """One row of additive aggregates (count/sum) over a table.

    With ``split_path`` (a private snapshot nobody writes) a big rowid table is
    split in two rowid halves aggregated by two threads on their own connections:
    SQLite releases the GIL, so both cores work."""
    sql = f"SELECT {', '.join(items)} FROM {qi(schema['name'])}"
    if split_path is None or schema.get("without_rowid"):
        return list(conn.execute(sql, params).fetchone())
    lo, hi = conn.execute(f"SELECT min(rowid), max(rowid) FROM {qi(schema['name'])}").fetchone()
    if lo is None or hi - lo < SPLIT_MIN_ROWIDS:
        return list(conn.execute(sql, params).fetchone())
    mid = (lo + hi) // 2

    def part(where):
        c = sqlite_source.open_snapshot(split_path)
        try:
            return c.execute(f"{sql} WHERE {where}", params).fetchone()
        finally:
            c.close()
    with ThreadPoolExecutor(max_workers=2) as ex:
        a = ex.submit(part, f"rowid <= {mid}")
        b = ex.submit(part, f"rowid > {mid}")
        return [(x or 0) + (y or 0) for x, y in zip(a.result(), b.result())]


def _column_stats(conn, schema: dict, text_checks: bool = True,
                  split_path=None, extra: list | None = None) -> tuple[int, list[dict]]:
    """Row count and, per column, storage-class counts and, with ``text_checks``,
    NUL and non-ASCII counts (the exporter finds those itself while reading).

    SQLite function calls per cell dominate the cost, so each column gets ONE
    ``typeof()`` whose integer/real/blob counts are packed into one 64-bit sum
    (bit fields sized from the row count); TEXT = count(col) - the others."""
    t = qi(schema["name"])
    n = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    bits = max(1, n.bit_length())
    packed = 3 * bits <= 62
    items = ["count(*)"]
    for c in schema["columns"]:
        q = qi(c["name"])
        if packed:
            items += [f"count({q})",
                      f"sum(CASE typeof({q}) WHEN 'integer' THEN 1 WHEN 'real' THEN "
                      f"{1 << bits} WHEN 'blob' THEN {1 << (2 * bits)} ELSE 0 END)"]
        else:
            items += [f"sum(CASE typeof({q}) WHEN 'integer' THEN 1 WHEN 'real' THEN {_PACK} "
                      "ELSE 0 END)",
                      f"sum(CASE typeof({q}) WHEN 'text' THEN 1 WHEN 'blob' THEN {_PACK} "
                      "ELSE 0 END)"]
        if text_checks:
            items += [f"sum(typeof({q})='text' AND instr(CAST({q} AS BLOB), x'00')>0)",
                      f"sum(typeof({q})='text' AND {q} GLOB ?1)"]
    per = 4 if text_checks else 2
    base = len(items)
    items += [f"sum({w})" for w in (extra or [])]
    row = aggregate(conn, schema, items, (_NON_ASCII_GLOB,) if text_checks else (),
                    split_path)
    if extra is not None:
        extra[:] = row[base:]      # replaced in place by the counts
    n = row[0]
    stats = []
    mask = (1 << bits) - 1
    for i, _c in enumerate(schema["columns"]):
        v = [x or 0 for x in row[1 + per * i: 1 + per * (i + 1)]]
        if packed:
            ints, reals, blobs = v[1] & mask, (v[1] >> bits) & mask, v[1] >> (2 * bits)
            counts = (ints, reals, v[0] - ints - reals - blobs, blobs)
        else:
            counts = (v[0] % _PACK, v[0] // _PACK, v[1] % _PACK, v[1] // _PACK)
        typeof = {k: cnt for k, cnt in zip(typeplan.STORAGES, counts) if cnt}
        stats.append({"typeof": typeof, "nul": v[2] if text_checks else 0,
                      "non_ascii": v[3] if text_checks else 0})
    return n, stats


def _identifier_checks(schemas: dict, blockers: list, warnings: list):
    seen: dict[bytes, str] = {}
    for t, s in schemas.items():
        tb = t.encode("utf-8")
        if len(tb) > PG_IDENT_MAX:
            _blocker(blockers, t, None, "table name longer than 63 bytes (PostgreSQL "
                     "truncates identifiers)", 1, [])
        if tb[:PG_IDENT_MAX] in seen:
            _blocker(blockers, t, None, f"table name collides with {seen[tb[:63]]!r} "
                     "after truncation to 63 bytes", 1, [])
        seen[tb[:PG_IDENT_MAX]] = t
        cols: dict[bytes, str] = {}
        for c in s["columns"]:
            cb = c["name"].encode("utf-8")
            if len(cb) > PG_IDENT_MAX:
                _blocker(blockers, t, c["name"], "column name longer than 63 bytes", 1, [])
            if cb[:PG_IDENT_MAX] in cols:
                _blocker(blockers, t, c["name"], "column name collides after truncation "
                         "to 63 bytes", 1, [])
            cols[cb[:PG_IDENT_MAX]] = c["name"]
        for ix in s["unique"] + s["indexes"]:
            if len(ix["name"].encode("utf-8")) > PG_IDENT_MAX:
                warnings.append({"table": t, "column": None, "message":
                                 f"index name {ix['name']!r} longer than 63 bytes: the "
                                 "target must use a shorter name"})


def _sizes(conn, names) -> tuple[dict, str]:
    try:
        rows = conn.execute(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
            "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1").fetchall()
        return {n: s for n, s in rows}, "dbstat"
    except sqlite3.Error:
        return {}, "estimate"


def run_pragmas(conn, integrity: str = "integrity_check") -> tuple[list, list]:
    integ = [r[0] for r in conn.execute(f"PRAGMA {integrity}")]
    fk_rows = conn.execute("PRAGMA foreign_key_check").fetchall()
    return integ, fk_rows


def analyze_conn(conn, path=None, sizes: bool = True, integrity: str = "integrity_check",
                 text_checks: bool = True, pragmas=None, split_path=None) -> dict:
    """Analyze an open connection (inside the caller's read transaction)."""
    t0 = time.monotonic()
    old_factory = conn.text_factory
    conn.text_factory = _lenient_text
    try:
        return _analyze(conn, path, sizes, integrity, t0, text_checks, pragmas, split_path)
    finally:
        conn.text_factory = old_factory


def _analyze(conn, path, sizes, integrity, t0, text_checks, pragmas, split_path) -> dict:
    blockers: list = []
    warnings: list = []
    pragma = lambda name: conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    encoding = pragma("encoding")
    if encoding != "UTF-8":
        _blocker(blockers, None, None, f"database encoding is {encoding}, not UTF-8", 1, [])
    page_size, page_count = pragma("page_size"), pragma("page_count")

    schemas = {}
    for t in sqlite_source.tables(conn):
        schemas[t["name"]] = sqlite_source.table_schema(conn, t["name"], t["sql"])
    sqlite_source.resolve_fk_targets(schemas)
    order, cycles, selfref = sqlite_source.load_order(schemas)
    for s in schemas.values():
        for fk in s["foreign_keys"]:
            if fk["ref_table"] not in schemas:
                _blocker(blockers, s["name"], ",".join(fk["columns"]),
                         f"foreign key references missing table {fk['ref_table']!r}", 1, [])
    _identifier_checks(schemas, blockers, warnings)

    size_map, size_method = _sizes(conn, schemas) if sizes else ({}, "skipped")
    tables = {}
    total = 0
    total_pages = page_size * page_count
    for name in order:
        s = schemas[name]
        # range checks of the declared kind ride along in the same pass; they are
        # used when the type plan confirms that kind (the usual case)
        spec = _speculative_checks(s)
        counts = [w for _i, _lg, _r, w in spec]
        n, stats = _column_stats(conn, s, text_checks, split_path, counts)
        precomputed = {(s["columns"][i]["name"], lg, r): (w, cnt)
                       for (i, lg, r, w), cnt in zip(spec, counts)}
        total += n
        columns = []
        plan_blocked = set()
        for col, st in zip(s["columns"], stats):
            plan = typeplan.plan_column(col["declared"], st["typeof"])
            if plan["blockers"]:
                plan_blocked.add(col["name"])
            c = dict(col)
            c.update({"affinity": typeplan.affinity(col["declared"]),
                      "storage": plan["storage"], "logical": plan["logical"],
                      "pg_type": plan["pg_type"], "typeof": st["typeof"],
                      "nulls": n - sum(st["typeof"].values())})
            q = qi(col["name"])
            for reason, where in plan["blockers"]:
                w = where.format(c=q)
                cnt = conn.execute(f"SELECT count(*) FROM {qi(name)} WHERE {w}").fetchone()[0]
                _blocker(blockers, name, col["name"], reason, cnt, _keys(conn, s, w))
            for msg in plan["warnings"]:
                warnings.append({"table": name, "column": col["name"], "message": msg})
            if st["nul"]:
                w = f"typeof({q})='text' AND instr(CAST({q} AS BLOB), x'00')>0"
                _blocker(blockers, name, col["name"], "NUL character inside TEXT "
                         "(PostgreSQL text cannot hold it)", st["nul"], _keys(conn, s, w))
            if st["non_ascii"]:
                _check_utf8(conn, s, col["name"], blockers)
            if not plan["blockers"]:
                _value_checks(conn, s, c, blockers, warnings)
            columns.append(c)
        _range_checks(conn, s, [c for c in columns if c["name"] not in plan_blocked],
                      blockers, split_path, precomputed)
        entry = {"rows": n, "without_rowid": s["without_rowid"],
                 "primary_key": s["primary_key"],
                 "autoincrement": sqlite_source.autoincrement_high_water(conn, s),
                 "columns": columns, "unique": s["unique"], "indexes": s["indexes"],
                 "foreign_keys": s["foreign_keys"]}
        if size_map:
            entry["size_bytes"] = size_map.get(name, 0)
        elif sizes:
            entry["size_bytes_estimate"] = None  # filled below once totals are known
        tables[name] = entry
    if sizes and not size_map and total:
        # no dbstat: share the file's pages out by row count (rough, and labelled so)
        for entry in tables.values():
            entry["size_bytes_estimate"] = int(total_pages * entry["rows"] / total)

    # PRAGMA integrity/quick_check and foreign_key_check: computed here, or by the
    # caller in parallel on another connection (``pragmas``)
    integ, fk_rows = pragmas() if pragmas else run_pragmas(conn, integrity)
    if integ != ["ok"]:
        _blocker(blockers, None, None, f"PRAGMA {integrity} failed: " + "; ".join(integ[:10]),
                 len(integ), [])

    orphans: dict[str, list] = {}
    for table, rowid, parent, fkid in fk_rows:
        orphans.setdefault((table, parent, fkid), []).append(rowid)
    fk_report = []
    for (table, parent, fkid), rowids in orphans.items():
        fks = schemas[table]["foreign_keys"] if table in schemas else []
        # PRAGMA foreign_key_check numbers FKs like foreign_key_list (reverse order)
        fk = fks[len(fks) - 1 - fkid] if 0 <= fkid < len(fks) else None
        cols = ",".join(fk["columns"]) if fk else None
        keys = []
        s = schemas.get(table)
        if s is not None and rowids and rowids[0] is not None:
            sel, names = _key_sql(s)
            for rid in rowids[:MAX_KEYS]:
                r = conn.execute(f"SELECT {sel} FROM {qi(table)} WHERE rowid=?",
                                 (rid,)).fetchone()
                keys.append(r[0] if len(names) == 1 else dict(zip(names, r)))
        entry = {"table": table, "columns": cols, "parent": parent,
                 "count": len(rowids), "rowids": rowids[:MAX_KEYS], "keys": keys}
        fk_report.append(entry)
        _blocker(blockers, table, cols, f"orphaned rows: foreign key to {parent!r} "
                 "has no parent row", len(rowids), keys)

    return {
        "format": "pgcutover-analysis", "tool_version": __version__,
        "source": {"path": str(path) if path else None,
                   "size": os.path.getsize(path) if path else page_size * page_count,
                   "sqlite_version": sqlite3.sqlite_version, "page_size": page_size,
                   "page_count": page_count, "freelist_count": pragma("freelist_count"),
                   "encoding": encoding, "journal_mode": pragma("journal_mode"),
                   "user_version": pragma("user_version")},
        "integrity_check": integ if integ != ["ok"] else "ok",
        "foreign_key_check": {"orphans": sum(e["count"] for e in fk_report),
                              "violations": fk_report},
        "load_order": order, "fk_cycles": cycles, "self_references": selfref,
        "size_method": size_method,
        "tables": tables, "table_count": len(tables), "total_rows": total,
        "blockers": blockers, "warnings": warnings, "ok": not blockers,
        "seconds": round(time.monotonic() - t0, 3),
    }


def _check_utf8(conn, s, column, blockers):
    q = qi(column)
    sel, names = _key_sql(s)
    bad, keys = 0, []
    for row in conn.execute(f"SELECT CAST({q} AS BLOB), {sel} FROM {qi(s['name'])} "
                            f"WHERE typeof({q})='text' AND {q} GLOB ?", (_NON_ASCII_GLOB,)):
        try:
            row[0].decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
            if len(keys) < MAX_KEYS:
                keys.append(row[1] if len(names) == 1 else dict(zip(names, row[1:])))
    if bad:
        _blocker(blockers, s["name"], column, "invalid UTF-8 in TEXT", bad, keys)


_SPECULATE = frozenset({"timestamp", "boolean", "numeric"})


def _speculative_checks(s) -> list[tuple[int, str, str, str]]:
    """(column index, logical, reason, where) for the declared kind, storage unknown."""
    out = []
    for i, c in enumerate(s["columns"]):
        kind = typeplan.declared_kind(c["declared"])
        if kind in _SPECULATE:
            for reason, where in typeplan.bad_cell_sql(kind, "", qi(c["name"]), None):
                out.append((i, kind, reason, where))
    return out


def _range_checks(conn, s, columns, blockers, split_path=None, precomputed=None):
    """All per-type range checks of a table: counted already in the stats pass when
    the declared kind was right, else in one more aggregate query."""
    precomputed = precomputed or {}
    found, checks = [], []
    for c in columns:
        for reason, where in typeplan.bad_cell_sql(c["logical"], c["pg_type"],
                                                   qi(c["name"]), c["typeof"]):
            pre = precomputed.get((c["name"], c["logical"], reason))
            if pre is not None:
                found.append((c["name"], reason, pre[0], pre[1]))
            else:
                checks.append((c["name"], reason, where))
    if checks:
        row = aggregate(conn, s, [f"sum({w})" for _n, _r, w in checks], (), split_path)
        found += [(n, r, w, cnt) for (n, r, w), cnt in zip(checks, row)]
    for col, reason, where, cnt in found:
        if cnt:
            _blocker(blockers, s["name"], col, reason, cnt, _keys(conn, s, where))


def _value_checks(conn, s, c, blockers, warnings):
    """Python checks of the cells that need parsing (TEXT timestamps, JSON, ...)."""
    name, q = s["name"], qi(c["name"])
    logical, pg_type = c["logical"], c["pg_type"]
    flt = typeplan.python_check_filter(logical, pg_type, q, c["typeof"])
    if not flt:
        return
    if logical == "json":
        check = canonical.jsonb_text
    elif logical == "timestamp":
        check = canonical.timestamp_ms
    elif logical == "date":
        check = canonical.date_text
    else:
        p, sc = typeplan.numeric_precision(c["declared"])

        def check(v, p=p, sc=sc):
            canonical.check_numeric(canonical.numeric_decimal(v), p, sc)
    sel, names = _key_sql(s)
    reasons: dict[str, list] = {}
    for row in conn.execute(f"SELECT {q}, {sel} FROM {qi(name)} WHERE {flt}"):
        try:
            check(row[0])
        except canonical.CellError as exc:
            keys = reasons.setdefault(str(exc), [0, []])
            keys[0] += 1
            if len(keys[1]) < MAX_KEYS:
                keys[1].append(row[1] if len(names) == 1 else dict(zip(names, row[1:])))
    if not reasons:
        return
    if logical == "json":
        # declared JSON that does not all parse stays text (no loss), with a warning
        c["logical"], c["pg_type"] = "text", "text"
        warnings.append({"table": name, "column": c["name"], "message":
                         "JSON column has %d value(s) jsonb would refuse (%s): migrated "
                         "as text" % (sum(v[0] for v in reasons.values()),
                                      "; ".join(reasons))})
        return
    for reason, (cnt, keys) in reasons.items():
        _blocker(blockers, name, c["name"], reason, cnt, keys)


def analyze(sqlite_path, sizes: bool = True) -> dict:
    """Analyze a SQLite file read-only, inside one read transaction."""
    conn = sqlite_source.open_readonly(sqlite_path)
    try:
        conn.execute("BEGIN")
        try:
            report = analyze_conn(conn, path=sqlite_source.source_path(sqlite_path),
                                  sizes=sizes)
        finally:
            conn.execute("ROLLBACK")
        if sqlite_source.changed_since_open(conn):
            report["warnings"].append({"table": None, "column": None, "message":
                                       "the file changed while it was analyzed"})
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"cannot analyze SQLite source: {exc}") from None
    finally:
        conn.close()
    return report
