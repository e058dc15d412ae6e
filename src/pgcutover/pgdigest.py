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
        # date_part is float8 (extract is numeric since PG 14, ~3x slower); exact after
        # round() for whole milliseconds in years 1..9999 (error < 0.1 ms).
        return f"round(date_part('epoch', {col})*1000)::bigint::text"
    if logical == "date":
        return f"to_char({col},'YYYY-MM-DD')"
    if logical == "bytea":
        return f"encode({col},'hex')"
    if logical == "json":
        return f"{col}::jsonb::text"
    raise ValueError(f"unknown logical type {logical!r}")


# Epoch ms 10^12 and 10^13 - 1 ms: between them the payload has 13 digits. The +00 makes
# the bound absolute for timestamptz; a timestamp (without time zone) literal ignores it.
TS_13_DIGITS = ("'2001-09-09 01:46:40+00'", "'2286-11-20 17:46:39.999+00'")
TS_TYPES = {"", "timestamp", "timestamptz", "timestamp with time zone",
            "timestamp without time zone"}


def token_expr(logical: str, col: str, target_type: str | None = None) -> str:
    """SQL for the row-string token ``len:payload`` (or ``N``) of one column.

    The generic form evaluates the payload twice (PostgreSQL does not share common
    subexpressions); where the length is known without the payload it is a literal:
    float8send is 8 bytes (16 hex digits), a boolean 1 character, hex of bytea twice
    its octets, and a timestamp between 2001-09-09 and 2286-11-20 has a 13-digit ms
    payload (the usual case; others take the generic form)."""
    p = payload_expr(logical, col, target_type)
    t = (target_type or "").split("(")[0].strip()
    if logical == "float":
        return f"coalesce('16:'||{p},'N')"
    if logical == "boolean":
        return f"coalesce('1:'||{p},'N')"
    if logical == "bytea":
        return f"coalesce((2*octet_length({col}))::text||':'||{p},'N')"
    if logical == "timestamp" and t in TS_TYPES:
        lo, hi = TS_13_DIGITS
        return (f"CASE WHEN {col} IS NULL THEN 'N' WHEN {col} >= {lo} AND {col} <= {hi} "
                f"THEN '13:'||{p} ELSE length({p})::text||':'||{p} END")
    return f"coalesce(length({p})::text||':'||{p},'N')"


def row_hash_sql(columns: list[dict], target_types: dict | None = None) -> str:
    """md5 of the canonical row string, as one SQL expression.

    ``concat_ws`` builds the row string in one pass (a chain of ``||`` re-copies the
    growing string for every token: 4x slower on a 27-column table)."""
    target_types = target_types or {}
    toks = [token_expr(c["logical"], qi(c["name"]), target_types.get(c["name"]))
            for c in columns]
    if not toks:
        return "md5('')"
    return "md5(concat_ws('|', " + ", ".join(toks) + "))"


def digest_sql(schema: str, table: str, columns: list[dict], target_types: dict | None = None) -> str:
    """The table digest query. The MATERIALIZED CTE computes each row's md5 once (a
    flattened sub-select would evaluate it once per sum) and its scan may run in
    parallel workers."""
    md5 = row_hash_sql(columns, target_types)
    return (
        f"WITH s AS MATERIALIZED (SELECT {md5} AS h FROM {qn(schema, table)}) "
        "SELECT count(*), "
        "coalesce(sum(('x'||substr(h,1,16))::bit(64)::bigint),0), "
        "coalesce(sum(('x'||substr(h,17,16))::bit(64)::bigint),0) FROM s"
    )


# Planner settings for the digest queries: a 2-worker parallel scan is worth it far
# below the default thresholds because the per-row work (md5 of the row) is heavy.
PARALLEL_SETTINGS = (("parallel_setup_cost", "0"), ("parallel_tuple_cost", "0"),
                     ("min_parallel_table_scan_size", "0"))


def set_parallel(cur, local: bool = True):
    for name, value in PARALLEL_SETTINGS:
        cur.execute("SELECT set_config(%s, %s, %s)", (name, value, local))


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
    md5 = row_hash_sql(columns, target_types)
    keys = [payload_expr(by_name[k]["logical"], qi(k), target_types.get(k)) for k in key_columns]
    return f"SELECT {''.join(k + ', ' for k in keys)}{md5} FROM {qn(schema, table)}"
