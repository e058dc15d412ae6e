"""``pgcutover import`` / ``plan``: load a verified export into PostgreSQL in ONE transaction.

Order inside the transaction: advisory lock -> no-op check (same manifest already
imported and counts unchanged) -> schema (auto: CREATE TABLE bare; existing:
compatibility check, then the target's own secondary indexes, keys and FKs are
dropped so the load does not maintain them row by row) -> COPY per table in load
order (pass-through of the file where no cell needs converting) -> count check ->
keys, indexes, FKs built / restored (FKs validate every row) -> sequences -> content
digest of every table computed in SQL and compared with the manifest -> marker row
-> COMMIT. Any failure rolls everything back, naming table, column and key.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

from . import compat, control, ddl
from .errors import ImportFailedError, TargetError, UsageError
from .manifest import load_manifest
from .pgconn import connect, pg_error_summary, qi, qn
from .pgdigest import set_digest_settings, table_digest
from .row_convert import ChunkReader, TableConverter, key_of_file_line
from .verify_export import verify_export

COPY_CHUNK = 1 << 20
MAX_KEYS = 10


# -- export side ------------------------------------------------------------------------
def load_verified_manifest(export_dir) -> dict:
    """Verify the export (files vs manifest) BEFORE any connection, then load it."""
    # raises ExportVerificationError (tampered/incomplete export); rows are counted by
    # COPY against the manifest, so the line count is skipped here
    verify_export(export_dir, count_lines=False)
    return read_manifest(export_dir)


def read_manifest(export_dir) -> dict:
    """manifest.json, format and self-digest checked (manifest.load_manifest)."""
    return load_manifest(export_dir)


def rows_path(export_dir, manifest: dict, table: str) -> Path:
    return Path(export_dir) / manifest["tables"][table]["file"]


# -- target inspection ------------------------------------------------------------------
def _existing_tables(cur, schema: str) -> set[str]:
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r','p','v','m','f')", (schema,))
    return {r[0] for r in cur.fetchall()}


def _table_has_rows(cur, schema: str, table: str) -> bool:
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {qn(schema, table)})")
    return cur.fetchone()[0]


def _counts_match(cur, schema: str, marker_tables: dict) -> bool:
    existing = _existing_tables(cur, schema)
    for table, info in marker_tables.items():
        if table not in existing:
            return False
        cur.execute(f"SELECT count(*) FROM {qn(schema, table)}")
        if cur.fetchone()[0] != info["rows"]:
            return False
    return True


def foreign_keys(cur, schema: str, tables: list[str], referencing: bool = False) -> list[dict]:
    """Foreign keys defined on ``tables`` (and, with ``referencing``, those of other
    tables pointing at them): name, definition, validation state, column lists."""
    cur.execute("""
        SELECT con.conname, n.nspname, c.relname, pg_get_constraintdef(con.oid),
               rn.nspname, rc.relname, con.convalidated,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE con.contype = 'f'
          AND ((n.nspname = %(s)s AND c.relname = ANY(%(t)s))
            OR (%(r)s AND rn.nspname = %(s)s AND rc.relname = ANY(%(t)s)))
        ORDER BY n.nspname, c.relname, con.conname""",
                {"s": schema, "t": list(tables), "r": referencing})
    return [{"name": r[0], "schema": r[1], "table": r[2], "def": r[3], "ref_schema": r[4],
             "ref_table": r[5], "validated": r[6], "columns": list(r[7]),
             "ref_columns": list(r[8])} for r in cur.fetchall()]


def _existing_mode_objects(cur, schema: str, tables: list[str]) -> dict:
    """The target's keys, unique/plain indexes and FKs touching ``tables``, with the
    definitions needed to recreate them exactly (pg_get_indexdef/constraintdef)."""
    if not tables:
        return {"fks": [], "keys": [], "indexes": []}
    fks = [dict(fk, kind="foreign_key") for fk in foreign_keys(cur, schema, tables, True)]
    cur.execute("""
        SELECT con.conname, c.relname, con.contype, pg_get_constraintdef(con.oid),
               ARRAY(SELECT pg_get_indexdef(con.conindid, k, true)
                     FROM generate_series(1, i.indnkeyatts) k)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_index i ON i.indexrelid = con.conindid
        WHERE con.contype IN ('p', 'u', 'x') AND n.nspname = %s AND c.relname = ANY(%s)
        ORDER BY c.relname, con.conname""", (schema, tables))
    keys = [{"kind": {"p": "primary_key", "u": "unique", "x": "exclusion"}[r[2]],
             "name": r[0], "schema": schema, "table": r[1], "def": r[3], "exprs": list(r[4])}
            for r in cur.fetchall()]
    cur.execute("""
        SELECT ic.relname, c.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
               ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                     FROM generate_series(1, i.indnkeyatts) k), i.indpred IS NOT NULL
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                          AND con.contype IN ('p', 'u', 'x'))
        ORDER BY c.relname, ic.relname""", (schema, tables))
    indexes = [{"kind": "unique" if r[3] else "index", "name": r[0], "schema": schema,
                "table": r[1], "def": r[2], "exprs": list(r[4]), "partial": r[5]}
               for r in cur.fetchall()]
    return {"fks": fks, "keys": keys, "indexes": indexes}


# -- the plan ---------------------------------------------------------------------------
def _build_plan(cur, manifest: dict, schema: str, schema_mode: str, replace: bool) -> dict:
    if schema_mode not in ("auto", "existing"):
        raise UsageError(f"schema_mode must be auto or existing, not {schema_mode!r}")
    if schema == control.CONTROL_SCHEMA:
        raise UsageError(f"schema {schema!r} is pgcutover's control schema")
    plan = {"schema": schema, "schema_mode": schema_mode, "replace": replace,
            "manifest_digest": manifest["manifest_digest"], "noop": False,
            "tables": [], "skipped_tables": [], "target_types": {}, "compat": None,
            "pre": [], "copy": [], "build": [], "foreign_keys": [], "sequences": [],
            "created_tables": []}

    last = control.latest_import(cur, schema)
    if (last and last["manifest_digest"] == manifest["manifest_digest"]
            and last["status"] == "complete" and last["schema_mode"] == schema_mode
            and _counts_match(cur, schema, last["tables"])):
        plan["noop"] = True
        plan["previous_import"] = last
        return plan

    existing = _existing_tables(cur, schema)
    if schema_mode == "auto":
        tables = list(manifest["load_order"])
        present = [t for t in tables if t in existing]
        if present:
            owned = control.owned_tables(cur, schema)
            foreign = [t for t in present if t not in owned]
            if foreign:
                raise TargetError(
                    f"target schema {schema!r} already has {len(foreign)} of the export's "
                    f"tables that pgcutover did not create; refusing to touch them "
                    f"(use schema_mode=existing for a schema made by the app)",
                    table=foreign[0], details=[{"table": t, "problem": "exists, not owned"}
                                               for t in foreign])
            if not replace:
                raise TargetError(
                    f"target schema {schema!r} is not empty ({len(present)} of the export's "
                    f"tables exist, from an earlier import); use --replace to replace them",
                    table=present[0])
            plan["pre"].append("DROP TABLE " + ", ".join(qn(schema, t) for t in present))
        if schema not in _schemas(cur):
            plan["pre"].append(f"CREATE SCHEMA {qi(schema)}")
        for t in tables:
            tinfo = manifest["tables"][t]
            plan["pre"].append(ddl.create_table_sql(schema, t, tinfo))
            plan["build"].extend(dict(item, table=t, schema=schema)
                                 for item in ddl.post_load_sql(schema, t, tinfo))
            plan["foreign_keys"].extend(dict(item, table=t, schema=schema, ref_schema=schema)
                                        for item in ddl.foreign_key_sql(schema, t, tinfo, manifest))
            plan["target_types"][t] = {c["name"]: c["pg_type"] for c in tinfo["columns"]}
        plan["created_tables"] = tables
    else:
        report = compat.check(cur, manifest, schema)
        plan["compat"] = report
        plan["skipped_tables"] = report["skipped_tables"]
        tables = [t for t in manifest["load_order"] if t not in report["skipped_tables"]]
        plan["target_types"] = report["target_types"]
        nonempty = [t for t in tables if _table_has_rows(cur, schema, t)]
        if nonempty and not replace:
            raise TargetError(
                f"{len(nonempty)} target table(s) already hold rows; use --replace to "
                f"TRUNCATE the export's tables first", table=nonempty[0],
                details=[{"table": t, "problem": "not empty"} for t in nonempty])
        objs = _existing_mode_objects(cur, schema, tables)
        for fk in objs["fks"]:
            plan["pre"].append(f"ALTER TABLE {qn(fk['schema'], fk['table'])} DROP CONSTRAINT {qi(fk['name'])}")
        for k in objs["keys"]:
            plan["pre"].append(f"ALTER TABLE {qn(schema, k['table'])} DROP CONSTRAINT {qi(k['name'])}")
        for ix in objs["indexes"]:
            plan["pre"].append(f"DROP INDEX {qn(schema, ix['name'])}")
        if tables:   # also when empty: COPY FREEZE needs the truncate in this transaction
            plan["pre"].append("TRUNCATE " + ", ".join(qn(schema, t) for t in tables))
        for ix in objs["indexes"]:
            plan["build"].append(dict(ix, sql=ix["def"]))
        for k in objs["keys"]:
            plan["build"].append(dict(k, sql=f"ALTER TABLE {qn(schema, k['table'])} ADD CONSTRAINT "
                                             f"{qi(k['name'])} {k['def']}"))
        for fk in objs["fks"]:
            # re-added validated even if the app had it NOT VALID: the load is proven whole
            fkdef = re.sub(r"\s+NOT VALID$", "", fk["def"])
            plan["foreign_keys"].append(dict(fk, sql=f"ALTER TABLE {qn(fk['schema'], fk['table'])} "
                                                     f"ADD CONSTRAINT {qi(fk['name'])} {fkdef}"))
    plan["tables"] = tables
    for t in tables:
        tinfo = manifest["tables"][t]
        cols = ", ".join(qi(c["name"]) for c in tinfo["columns"])
        # FREEZE: the table was created or truncated in this transaction, so rows are
        # written frozen and all-visible: the index builds, FK checks and digests that
        # follow do not dirty every page again to set hint bits.
        plan["copy"].append({"table": t, "sql": f"COPY {qn(schema, t)} ({cols}) FROM STDIN "
                                                "WITH (FREEZE)"})
        auto = tinfo.get("autoincrement")
        if auto:
            plan["sequences"].append({"table": t, "column": auto["column"],
                                      "sql": ddl.sequence_sql(schema, t, auto["column"],
                                                              auto.get("high_water", 0))})
    return plan


def _schemas(cur) -> set[str]:
    cur.execute("SELECT nspname FROM pg_namespace")
    return {r[0] for r in cur.fetchall()}


def _plan_queries(plan: dict) -> list[str]:
    if plan["noop"]:
        return []
    return ([control.LOCK_SQL] + plan["pre"] + [c["sql"] for c in plan["copy"]]
            + [b["sql"] for b in plan["build"]] + [f["sql"] for f in plan["foreign_keys"]]
            + [s["sql"] for s in plan["sequences"]] + control.ddl()
            + [f"INSERT INTO {qi(control.CONTROL_SCHEMA)}.imports (...) VALUES (...)"])


def _public_plan(plan: dict, manifest: dict) -> dict:
    return {
        "changed": not plan["noop"],
        "noop": plan["noop"],
        "schema": plan["schema"], "schema_mode": plan["schema_mode"],
        "manifest_digest": plan["manifest_digest"],
        "tables": {t: {"rows": manifest["tables"][t]["rows"],
                       "content_digest": manifest["tables"][t]["content_digest"]}
                   for t in plan["tables"]},
        "skipped_tables": plan["skipped_tables"],
        "compat": plan["compat"],
        "executed_queries": _plan_queries(plan),
    }


def plan_import(export_dir, dsn, password=None, schema="public", schema_mode="auto",
                replace=False) -> dict:
    """What ``import_export`` would do (statements, compat report); changes nothing."""
    manifest = load_verified_manifest(export_dir)
    conn = connect(dsn, password)
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            plan = _build_plan(cur, manifest, schema, schema_mode, replace)
        return _public_plan(plan, manifest)
    except psycopg2.Error as exc:
        raise TargetError(f"planning the import failed: {pg_error_summary(exc)}") from None
    finally:
        conn.rollback()
        conn.close()


# -- diagnosis of constraint failures (keys, never values) ---------------------------------
def _pk_select(pk: list[str], alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return ", ".join(f"{a}{qi(c)}" for c in pk) if pk else "ctid::text"


def _keys_from_rows(pk: list[str], rows) -> list:
    if not pk:
        return [{"ctid": r[0]} for r in rows]
    return [{c: (v if isinstance(v, (int, str)) or v is None else str(v))
             for c, v in zip(pk, r)} for r in rows]


def _duplicate_keys(cur, schema, table, exprs, pk) -> list:
    ex = ", ".join(exprs)
    cur.execute(f"SELECT {_pk_select(pk)} FROM {qn(schema, table)} WHERE ({ex}) IN "
                f"(SELECT {ex} FROM {qn(schema, table)} GROUP BY {ex} HAVING count(*) > 1) "
                f"LIMIT {MAX_KEYS}")
    return _keys_from_rows(pk, cur.fetchall())


def _null_keys(cur, schema, table, cols, pk) -> list:
    cond = " OR ".join(f"{qi(c)} IS NULL" for c in cols)
    cur.execute(f"SELECT {_pk_select(pk)} FROM {qn(schema, table)} WHERE {cond} LIMIT {MAX_KEYS}")
    return _keys_from_rows(pk, cur.fetchall())


def orphan_keys(cur, fk: dict, pk: list[str], limit: int = MAX_KEYS) -> list:
    """Primary keys of child rows whose FK columns reference no parent row."""
    cols, ref = fk["columns"], fk["ref_columns"]
    notnull = " AND ".join(f"c.{qi(c)} IS NOT NULL" for c in cols)
    match = " AND ".join(f"p.{qi(r)} = c.{qi(c)}" for c, r in zip(cols, ref))
    cur.execute(f"SELECT {_pk_select(pk, 'c')} FROM {qn(fk['schema'], fk['table'])} c "
                f"WHERE {notnull} AND NOT EXISTS (SELECT 1 FROM "
                f"{qn(fk['ref_schema'], fk['ref_table'])} p WHERE {match}) LIMIT {int(limit)}")
    return _keys_from_rows(pk, cur.fetchall())


def _index_exprs(item: dict) -> list[str]:
    if item.get("exprs"):
        return item["exprs"]
    return [qi(c) for c in item["columns"]]


def _run_checked(cur, item: dict, manifest: dict):
    """Run one build statement under a savepoint; on a data violation find the keys."""
    cur.execute("SAVEPOINT pgc_build")
    try:
        cur.execute(item["sql"])
    except psycopg2.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT pgc_build")
        table = item["table"]
        pk = (manifest["tables"].get(table) or {}).get("primary_key") or []
        code = exc.pgcode or ""
        keys = []
        what = item["kind"].replace("_", " ")
        try:
            if code == "23505":      # unique_violation (PK or unique index)
                exprs = _index_exprs(item)
                keys = _duplicate_keys(cur, item["schema"], table, exprs, pk)
                msg = f"duplicate values for {what} {item['name']}"
            elif code == "23503":    # foreign_key_violation
                keys = orphan_keys(cur, item, pk)
                msg = (f"rows reference missing {item['ref_table']} rows "
                       f"(foreign key {item['name']})")
            elif code == "23502":    # not_null_violation (PK on a NULL column)
                keys = _null_keys(cur, item["schema"], table, item["columns"], pk)
                msg = f"NULL in {what} {item['name']} columns"
            else:
                msg = f"{what} {item['name']} failed: {pg_error_summary(exc)}"
        except psycopg2.Error:
            msg = f"{what} {item['name']} failed: {pg_error_summary(exc)}"
        column = ",".join(item.get("columns") or []) or None
        raise ImportFailedError(msg, table=table, column=column,
                                key=keys[0] if keys else None,
                                details=[{"table": table, "key": k} for k in keys]) from None
    cur.execute("RELEASE SAVEPOINT pgc_build")


# -- the import -------------------------------------------------------------------------
_CTX_RE = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


def _copy_table(cur, export_dir, manifest, plan, item, progress):
    table = item["table"]
    tinfo = manifest["tables"][table]
    path = rows_path(export_dir, manifest, table)
    conv = TableConverter(table, tinfo, plan["target_types"].get(table))
    t0 = time.monotonic()
    try:
        with open(path, "rb") as fh:
            src = fh if conv.passthrough else ChunkReader(conv.chunks(fh))
            cur.copy_expert(item["sql"], src, size=COPY_CHUNK)
    except psycopg2.Error as exc:
        if conv.error is not None:      # our own conversion error, raised inside read()
            raise conv.error from None
        ctx = exc.diag.context or "" if getattr(exc, "diag", None) else ""
        m = _CTX_RE.search(ctx)
        key = column = None
        if m:
            key = key_of_file_line(path, tinfo["columns"], tinfo.get("primary_key") or [],
                                   int(m.group(1)))
            column = m.group(2).strip() if m.group(2) else None
        raise ImportFailedError(f"COPY rejected a row: {pg_error_summary(exc)}",
                                table=table, column=column, key=key) from None
    loaded = cur.rowcount
    secs = time.monotonic() - t0
    expected = tinfo["rows"]
    if loaded != expected:
        raise ImportFailedError(f"COPY loaded {loaded} rows, the manifest says {expected}",
                                table=table)
    if progress:
        progress(f"{table}: {loaded} rows, {secs:.2f} s, "
                 f"{loaded / secs if secs > 0 else 0:.0f} rows/s"
                 + (" (pass-through)" if conv.passthrough else ""))
    return {"rows": loaded, "seconds": round(secs, 3), "passthrough": conv.passthrough}


def import_export(export_dir, dsn, password=None, schema="public", schema_mode="auto",
                  replace=False, progress=None) -> dict:
    """Import the export into ``schema``; ``result['changed']`` is False when the same
    export is already there. Raises ImportFailedError / TargetError (rolled back)."""
    manifest = load_verified_manifest(export_dir)   # refused before any connection
    started = datetime.now(timezone.utc)
    t_start = time.monotonic()
    conn = connect(dsn, password)
    try:
        with conn.cursor() as cur:
            cur.execute(control.LOCK_SQL)
            if not cur.fetchone()[0]:
                raise TargetError("another pgcutover import is running on this cluster "
                                  "(advisory lock held)")
            plan = _build_plan(cur, manifest, schema, schema_mode, replace)
            if plan["noop"]:
                conn.rollback()
                prev = plan["previous_import"]
                return {"changed": False, "schema": schema, "schema_mode": schema_mode,
                        "manifest_digest": manifest["manifest_digest"],
                        "import_id": prev["id"], "tables": prev["tables"],
                        "skipped_tables": prev.get("skipped_tables") or [],
                        "msg": "this export is already imported (counts unchanged)"}
            for stmt in plan["pre"]:
                cur.execute(stmt)
            tables = {}
            for item in plan["copy"]:
                tables[item["table"]] = _copy_table(cur, export_dir, manifest, plan, item, progress)
            t_build = time.monotonic()
            for item in plan["build"]:
                _run_checked(cur, item, manifest)
            for item in plan["foreign_keys"]:
                _run_checked(cur, item, manifest)
            for item in plan["sequences"]:
                cur.execute(item["sql"])
            if progress:
                progress(f"keys, indexes, foreign keys, sequences: "
                         f"{time.monotonic() - t_build:.2f} s")
            t_dig = time.monotonic()
            set_digest_settings(cur, local=True)
            mismatches = []
            for t in plan["tables"]:
                tinfo = manifest["tables"][t]
                count, digest = table_digest(cur, schema, t, tinfo["columns"],
                                             plan["target_types"].get(t))
                tables[t]["content_digest"] = digest
                if count != tinfo["rows"] or digest != tinfo["content_digest"]:
                    mismatches.append(t)
            if progress:
                progress(f"content digests: {time.monotonic() - t_dig:.2f} s")
            if mismatches:
                from .verify_target import differing_keys
                details = []
                for t in mismatches:
                    keys = differing_keys(cur, export_dir, manifest, schema, t,
                                          plan["target_types"].get(t), limit=MAX_KEYS)
                    details.extend({"table": t, "key": k, "problem": p} for k, p in keys)
                    if not keys:   # PostgreSQL equals the file: the file is not the export
                        details.append({"table": t, "problem":
                                        "the .rows file content does not match the manifest's "
                                        "content digest (export inconsistent with its manifest)"})
                first = next((d for d in details if d.get("key")), {})
                raise ImportFailedError(
                    f"content digest differs after load in {len(mismatches)} table(s): "
                    f"{', '.join(mismatches)}", table=mismatches[0], key=first.get("key"),
                    details=details)
            marker_tables = {t: {"rows": v["rows"], "content_digest": v["content_digest"]}
                             for t, v in tables.items()}
            import_id = control.write_marker(
                cur, manifest=manifest, schema=schema, schema_mode=schema_mode,
                started_at=started, tables=marker_tables, skipped=plan["skipped_tables"],
                created=plan["created_tables"])
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise ImportFailedError(f"import rolled back: {pg_error_summary(exc)}") from None
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return {"changed": True, "schema": schema, "schema_mode": schema_mode,
            "manifest_digest": manifest["manifest_digest"], "import_id": import_id,
            "tables": tables, "skipped_tables": plan["skipped_tables"],
            "started_at": started.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "seconds": round(time.monotonic() - t_start, 3),
            "statements": len(_plan_queries(plan))}
