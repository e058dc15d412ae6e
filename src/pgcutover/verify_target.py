"""``pgcutover verify-target``: prove PostgreSQL holds exactly what the manifest describes.

Per table: row count and content digest recomputed in SQL (pgdigest, no row data to
the client); foreign keys present, validated, and no orphan rows; every manifest
primary key / unique / index has a matching PostgreSQL index; identity/serial
sequences above max(id) and SQLite's high-water mark. When a digest differs, the
differing rows are located by comparing per-row hashes keyed by primary key between
the ``.rows`` file (Python canonical payloads) and PostgreSQL (SQL), and up to
``max_keys`` keys are listed - never row values.
"""
from __future__ import annotations

import time

import psycopg2

from . import compat, control, ddl
from .canonical import CellError, payload, row_hash, row_record
from .errors import TargetError, TargetVerificationError
from .importer import foreign_keys, orphan_keys, read_manifest, rows_path
from .pgconn import connect, pg_error_summary, qi, qn
from .pgdigest import row_hashes_sql, set_digest_settings, table_digest
from .rows_codec import decode_line

MAX_KEYS = 10


# -- locating differing rows --------------------------------------------------------------
def _export_row_hashes(path, columns: list[dict], pk: list[str]) -> dict:
    """{key tuple (canonical payloads of the PK): row hash} from the ``.rows`` file."""
    storages = [c["storage"] for c in columns]
    logicals = [c["logical"] for c in columns]
    idx = [next(i for i, c in enumerate(columns) if c["name"] == k) for k in pk]
    out = {}
    with open(path, encoding="utf-8", newline="\n") as fh:
        for lineno, line in enumerate(fh, 1):
            values = decode_line(line, storages)
            try:
                h = row_hash(row_record(logicals, values))
                key = tuple(payload(logicals[i], values[i]) if values[i] is not None else None
                            for i in idx) if pk else (lineno,)
            except CellError:
                h, key = b"", (lineno,)
            out[key] = h
    return out


def _key_dict(pk: list[str], key: tuple, columns: list[dict]):
    if not pk:
        return {"line": key[0]}
    logical = {c["name"]: c["logical"] for c in columns}
    return {k: (int(v) if v is not None and logical[k] == "integer" else v)
            for k, v in zip(pk, key)}


def differing_keys(cur, export_dir, manifest: dict, schema: str, table: str,
                   target_types: dict | None = None, limit: int = MAX_KEYS) -> list:
    """[(key, problem)] for rows that differ between the export and PostgreSQL."""
    tinfo = manifest["tables"][table]
    columns, pk = tinfo["columns"], tinfo.get("primary_key") or []
    expected = _export_row_hashes(rows_path(export_dir, manifest, table), columns, pk)
    out = []
    if not pk:   # no key: multiset comparison, report export line numbers
        cur.execute(row_hashes_sql(schema, table, columns, [], target_types))
        have: dict = {}
        for (h,) in cur.fetchall():
            have[bytes.fromhex(h)] = have.get(bytes.fromhex(h), 0) + 1
        for key, h in expected.items():
            if have.get(h):
                have[h] -= 1
            elif len(out) < limit:
                out.append(({"line": key[0]}, "row missing or different in PostgreSQL"))
        return out
    name = "pgc_rowhash"
    with cur.connection.cursor(name=name) as sc:
        sc.itersize = 20000
        sc.execute(row_hashes_sql(schema, table, columns, pk, target_types))
        for row in sc:
            key, h = tuple(row[:-1]), bytes.fromhex(row[-1])
            exp = expected.pop(key, None)
            if exp is None:
                problem = "row in PostgreSQL is not in the export"
            elif exp != h:
                problem = "row differs from the export"
            else:
                continue
            if len(out) < limit:
                out.append((_key_dict(pk, key, columns), problem))
    for key in expected:
        if len(out) >= limit:
            break
        out.append((_key_dict(pk, key, columns), "row of the export is missing in PostgreSQL"))
    return out


# -- structure checks -----------------------------------------------------------------
def _norm(expr: str) -> str:
    return expr.replace('"', "").replace("::text", "").replace(" ", "")


def _pg_indexes(cur, schema: str, table: str) -> list[dict]:
    cur.execute("""
        SELECT ic.relname, i.indisunique, i.indisprimary, i.indpred IS NOT NULL, i.indisvalid,
               ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                     FROM generate_series(1, i.indnkeyatts) k)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s""", (schema, table))
    return [{"name": r[0], "unique": r[1], "primary": r[2], "partial": r[3], "valid": r[4],
             "exprs": [_norm(e) for e in r[5]]} for r in cur.fetchall()]


def _check_indexes(cur, schema, table, tinfo) -> tuple[list, list]:
    problems, warnings = [], []
    pg = _pg_indexes(cur, schema, table)
    wanted = []
    pk = tinfo.get("primary_key") or []
    if pk:
        wanted.append(("primary key", [qi(c) for c in pk], True, False, pk))
    for item in ddl.post_load_sql(schema, table, tinfo):
        if item["kind"] == "primary_key":
            continue
        src = next((x for x in (tinfo.get("unique") or []) + (tinfo.get("indexes") or [])
                    if ddl.pg_name(x.get("name") or "") == item["name"]), {})
        wanted.append((item["name"], item["exprs"], item["kind"] == "unique",
                       bool(src.get("where")), item["columns"]))
    for name, exprs, unique, partial, cols in wanted:
        want = [_norm(e) for e in exprs]
        match = [ix for ix in pg if ix["exprs"] == want and ix["valid"]
                 and (ix["unique"] or not unique) and (partial or not ix["partial"])]
        if match:
            continue
        loose = [ix for ix in pg if ix["exprs"] == [_norm(qi(c)) for c in cols] and ix["valid"]
                 and (ix["unique"] or not unique)]
        if loose and want != [_norm(qi(c)) for c in cols]:
            # a string: Ansible shows module ``warnings`` (they must be str)
            warnings.append(f"{table}: index {loose[0]['name']} is case-sensitive where "
                            f"SQLite's {name} used COLLATE NOCASE")
            continue
        problems.append({"table": table, "index": name, "column": ",".join(cols),
                         "problem": f"no matching {'unique ' if unique else ''}index in PostgreSQL"})
    return problems, warnings


def _check_foreign_keys(cur, schema, table, tinfo, manifest) -> list:
    problems = []
    pg = foreign_keys(cur, schema, [table])
    pk = tinfo.get("primary_key") or []
    for fk in tinfo.get("foreign_keys") or []:
        ref_cols = ddl.fk_ref_columns(fk, manifest)
        col = ",".join(fk["columns"])
        m = [x for x in pg if x["columns"] == list(fk["columns"]) and x["ref_schema"] == schema
             and x["ref_table"] == fk["ref_table"] and x["ref_columns"] == ref_cols]
        if not m:
            problems.append({"table": table, "column": col,
                             "problem": f"foreign key to {fk['ref_table']} is missing"})
        elif not m[0]["validated"]:
            problems.append({"table": table, "column": col,
                             "problem": f"foreign key {m[0]['name']} is NOT VALID"})
        keys = orphan_keys(cur, {"schema": schema, "table": table, "columns": fk["columns"],
                                 "ref_schema": schema, "ref_table": fk["ref_table"],
                                 "ref_columns": ref_cols}, pk, MAX_KEYS)
        for k in keys:
            problems.append({"table": table, "column": col, "key": k,
                             "problem": f"orphan row: no {fk['ref_table']} row matches"})
    return problems


def _check_sequence(cur, schema, table, tinfo) -> list:
    auto = tinfo.get("autoincrement")
    if not auto:
        return []
    col = auto["column"]
    cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (qn(schema, table), col))
    seq = cur.fetchone()[0]
    if not seq:
        return [{"table": table, "column": col, "problem": "no identity/serial sequence"}]
    cur.execute(f"SELECT last_value, is_called FROM {seq}")
    last, called = cur.fetchone()
    nxt = last + 1 if called else last
    cur.execute(f"SELECT coalesce(max({qi(col)}), 0) FROM {qn(schema, table)}")
    mx = cur.fetchone()[0]
    hw = int(auto.get("high_water") or 0)
    if nxt <= mx or nxt <= hw:
        return [{"table": table, "column": col, "problem":
                 f"sequence next value {nxt} is not above max(id) {mx} / SQLite high-water {hw}"}]
    return []


# -- entry point ------------------------------------------------------------------------
def verify_target(export_dir, dsn, password=None, schema="public", max_keys=MAX_KEYS) -> dict:
    """Report on PostgreSQL vs the manifest; raises TargetVerificationError (listing
    every problem) unless everything matches."""
    manifest = read_manifest(export_dir)
    t0 = time.monotonic()
    conn = connect(dsn, password)
    problems, warnings, tables = [], [], {}
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            set_digest_settings(cur, local=True)
            marker = control.latest_import(cur, schema)
            skipped = set(marker.get("skipped_tables") or []) if marker else set()
            if marker is None:
                warnings.append(f"no pgcutover import marker for schema {schema!r}")
            elif marker["manifest_digest"] != manifest["manifest_digest"]:
                problems.append({"problem": "the last import into this schema was a "
                                            "different export (manifest digest differs)"})
            catalog = compat.target_catalog(cur, schema)
            for table in manifest["load_order"]:
                if table in skipped:
                    continue
                tinfo = manifest["tables"][table]
                t1 = time.monotonic()
                have = catalog.get(table)
                if have is None:
                    problems.append({"table": table, "problem": "missing table"})
                    continue
                missing = [c["name"] for c in tinfo["columns"] if c["name"] not in have]
                if missing:
                    problems.extend({"table": table, "column": c, "problem": "missing column"}
                                    for c in missing)
                    continue
                types = {c: v["type"] for c, v in have.items()}
                count, digest = table_digest(cur, schema, table, tinfo["columns"], types)
                entry = {"rows": count, "expected_rows": tinfo["rows"],
                         "content_digest": digest,
                         "expected_digest": tinfo["content_digest"]}
                entry["ok"] = digest == tinfo["content_digest"]
                if count != tinfo["rows"]:
                    problems.append({"table": table, "problem":
                                     f"row count {count}, manifest {tinfo['rows']}"})
                if not entry["ok"]:
                    diffs = differing_keys(cur, export_dir, manifest, schema, table, types,
                                           limit=max_keys)
                    problems.append({"table": table, "problem": "content digest differs"})
                    problems.extend({"table": table, "key": k, "problem": p} for k, p in diffs)
                ip, iw = _check_indexes(cur, schema, table, tinfo)
                problems.extend(ip)
                warnings.extend(iw)
                problems.extend(_check_foreign_keys(cur, schema, table, tinfo, manifest))
                problems.extend(_check_sequence(cur, schema, table, tinfo))
                entry["seconds"] = round(time.monotonic() - t1, 3)
                tables[table] = entry
    except psycopg2.Error as exc:
        raise TargetError(f"verify-target failed: {pg_error_summary(exc)}") from None
    finally:
        conn.rollback()
        conn.close()
    report = {"ok": not problems, "schema": schema,
              "manifest_digest": manifest["manifest_digest"], "tables": tables,
              "skipped_tables": sorted(skipped), "problems": problems,
              "warnings": warnings, "seconds": round(time.monotonic() - t0, 3)}
    if problems:
        first = next((p for p in problems if p.get("table")), problems[0])
        raise TargetVerificationError(
            f"PostgreSQL does not match the export: {len(problems)} problem(s)",
            table=first.get("table"), column=first.get("column"), key=first.get("key"),
            details=problems)
    return report
