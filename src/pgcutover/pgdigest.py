"""The content digest of docs/FORMAT.md computed inside PostgreSQL, in pure SQL.

The row string is built server side (no row data travels to the client), so a
1M-row table digests in a few seconds. ``payload_expr`` is the ``p(c)`` column of
the FORMAT.md table; it also takes the *target* type into account because in
``existing`` schema mode a column of logical type ``integer`` may live in a
``numeric`` column, ``json`` in ``json``/``text``, ``timestamp`` in ``timestamptz``.
"""
from __future__ import annotations

from .pgconn import qi, qn

MOD64 = 1 << 64
INT_TYPES = {"smallint", "integer", "bigint"}


def payload_expr(logical: str, col: str, target_type: str | None = None) -> str:
    """SQL for the canonical payload of column ``col`` (already quoted); NULL stays NULL."""
    t = (target_type or "").split("(")[0].strip()
    if logical == "integer":
        if not t or t in INT_TYPES:
            return f"{col}::text"
        return f"trim_scale({col}::numeric)::text"
    if logical == "boolean":
        return f"CASE {col} WHEN true THEN 't' WHEN false THEN 'f' END"
    if logical == "float":
        return f"encode(float8send({col}::float8),'hex')"
    if logical == "numeric":
        return f"trim_scale({col}::numeric)::text"
    if logical == "text":
        return f"{col}::text"
    if logical == "timestamp":
        return f"(extract(epoch from {col})*1000)::bigint::text"
    if logical == "date":
        return f"to_char({col},'YYYY-MM-DD')"
    if logical == "bytea":
        return f"encode({col},'hex')"
    if logical == "json":
        return f"{col}::jsonb::text"
    raise ValueError(f"unknown logical type {logical!r}")


def row_hash_sql(columns: list[dict], target_types: dict | None = None) -> tuple[str, str]:
    """(inner select list of payloads p0..pn, md5 expression over them).

    Payloads are computed once in an OFFSET 0 sub-select (not flattened by the
    planner) and then each is used twice (length and value)."""
    target_types = target_types or {}
    inner, toks = [], []
    for i, c in enumerate(columns):
        inner.append(f"{payload_expr(c['logical'], qi(c['name']), target_types.get(c['name']))} AS p{i}")
        toks.append(f"coalesce(length(p{i})::text||':'||p{i},'N')")
    if not toks:
        return "1 AS p_", "md5('')"
    return ", ".join(inner), "md5(" + "||'|'||".join(toks) + ")"


def digest_sql(schema: str, table: str, columns: list[dict], target_types: dict | None = None) -> str:
    inner, md5 = row_hash_sql(columns, target_types)
    return (
        "SELECT count(*), "
        "coalesce(sum(('x'||substr(h,1,16))::bit(64)::bigint),0), "
        "coalesce(sum(('x'||substr(h,17,16))::bit(64)::bigint),0) "
        f"FROM (SELECT {md5} AS h FROM (SELECT {inner} FROM {qn(schema, table)} OFFSET 0) q) s"
    )


def format_digest(count: int, s1, s2) -> str:
    return f"v1:{int(count)}:{int(s1) % MOD64:016x}:{int(s2) % MOD64:016x}"


def table_digest(cur, schema: str, table: str, columns: list[dict],
                 target_types: dict | None = None) -> tuple[int, str]:
    """(row count, content digest string) of a PostgreSQL table."""
    cur.execute(digest_sql(schema, table, columns, target_types))
    count, s1, s2 = cur.fetchone()
    return int(count), format_digest(count, s1, s2)


def row_hashes_sql(schema: str, table: str, columns: list[dict], key_columns: list[str],
                   target_types: dict | None = None) -> str:
    """SELECT key payloads..., md5 per row: used to locate the rows that differ."""
    by_name = {c["name"]: c for c in columns}
    target_types = target_types or {}
    inner, md5 = row_hash_sql(columns, target_types)
    keys = [payload_expr(by_name[k]["logical"], qi(k), target_types.get(k)) for k in key_columns]
    key_sel = "".join(f"{e} AS k{i}, " for i, e in enumerate(keys))
    outer_keys = "".join(f"k{i}, " for i in range(len(keys)))
    return (f"SELECT {outer_keys}{md5} FROM (SELECT {key_sel}{inner} "
            f"FROM {qn(schema, table)} OFFSET 0) q")
