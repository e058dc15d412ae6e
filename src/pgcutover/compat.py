"""``existing`` schema mode: does the schema the app's migration tool made fit the data?

Every SQLite column must map (by exact name) to a target column whose type holds the
column's logical type without loss; every target column the source does not fill must
be nullable or have a default. ALL problems are collected and reported together
(``SchemaMismatchError.details``) before any row moves.
"""
from __future__ import annotations

from .errors import SchemaMismatchError
from .row_convert import split_type

# Tables whose content belongs to the target's own migration tool: Prisma's history
# cannot move across providers (P3019), the PostgreSQL side has its own baseline.
TOOL_OWNED_TABLES = {"_prisma_migrations"}

_INTS = {"smallint", "integer", "bigint"}


def target_catalog(cur, schema: str) -> dict:
    """{table: {column: {type, notnull, default, identity, generated}}} of ``schema``."""
    cur.execute("""
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '', a.attgenerated <> ''
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum""", (schema,))
    out: dict = {}
    for rel, att, typ, notnull, default, ident, gen in cur.fetchall():
        out.setdefault(rel, {})[att] = {"type": typ, "notnull": notnull, "default": default,
                                       "identity": ident, "generated": gen}
    return out


def type_fits(logical: str, target_type: str) -> str | None:
    """None if ``target_type`` holds every value of ``logical`` exactly, else why not."""
    base, prec, _scale = split_type(target_type)
    ok = {
        "integer": base in _INTS or base == "numeric",
        "boolean": base == "boolean",
        "float": base == "double precision",
        "numeric": base == "numeric",
        "text": base in ("text", "character varying", "citext"),
        "timestamp": base in ("timestamp", "timestamptz") and (prec is None or prec >= 3),
        "date": base == "date",
        "bytea": base == "bytea",
        "json": base in ("jsonb", "json", "text"),
    }.get(logical, False)
    if ok:
        return None
    if base == "real":
        return "real (float4) would round every value"
    if logical == "numeric" and base == "double precision":
        return "double precision would round decimals"
    if logical == "timestamp" and base in ("timestamp", "timestamptz"):
        return "timestamp precision below 3 would drop milliseconds"
    return f"{target_type} cannot hold {logical} values exactly"


def check(cur, manifest: dict, schema: str, raise_on_problems: bool = True) -> dict:
    """Compatibility report; raises SchemaMismatchError listing every problem."""
    catalog = target_catalog(cur, schema)
    problems, tables, skipped = [], {}, []
    for table in manifest["load_order"]:
        tinfo = manifest["tables"][table]
        if table in TOOL_OWNED_TABLES:
            skipped.append(table)
            continue
        target = catalog.get(table)
        if target is None:
            problems.append({"table": table, "problem": "missing table"})
            continue
        types = {}
        for c in tinfo["columns"]:
            name = c["name"]
            t = target.get(name)
            if t is None:
                problems.append({"table": table, "column": name, "problem": "missing column"})
                continue
            why = type_fits(c["logical"], t["type"])
            if why:
                problems.append({"table": table, "column": name, "problem":
                                 f"incompatible type: source {c['logical']}, target {t['type']}: {why}"})
            if t["generated"]:
                problems.append({"table": table, "column": name,
                                 "problem": "target column is GENERATED, cannot be loaded"})
            if t["notnull"] and (c.get("nulls") or (c.get("typeof") or {}).get("null")):
                problems.append({"table": table, "column": name, "problem":
                                 "target column is NOT NULL, source column has NULLs"})
            types[name] = t["type"]
        source_cols = {c["name"] for c in tinfo["columns"]}
        for name, t in target.items():
            if name in source_cols:
                continue
            if t["notnull"] and t["default"] is None and not t["identity"] and not t["generated"]:
                problems.append({"table": table, "column": name, "problem":
                                 "target column is NOT NULL without default and absent in source"})
        tables[table] = types
    report = {"ok": not problems, "schema": schema, "target_types": tables,
              "skipped_tables": skipped, "problems": problems}
    if problems and raise_on_problems:
        raise SchemaMismatchError(
            f"{len(problems)} source column(s)/table(s) do not fit the existing schema "
            f"{schema!r}", details=problems)
    return report
