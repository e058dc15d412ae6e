"""The content digest of docs/FORMAT.md computed inside PostgreSQL, in pure SQL.

The row record is built and hashed server side (no row data travels to the client),
so a 1M-row table digests in under two seconds. ``canonical_expr`` casts each column
to its logical type's canonical PostgreSQL type; it takes the *target* type into
account because in ``existing`` schema mode a column of logical type ``integer`` may
live in a ``numeric`` column, ``json`` in ``json``/``text``, ``timestamp`` in
``timestamptz``. ``payload_expr`` is the text payload, used to name keys.
"""
from __future__ import annotations

from . import canonical
from .pgconn import qi, qn

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


def canonical_expr(logical: str, col: str, target_type: str | None = None) -> str:
    """SQL for the canonical *value* of column ``col`` (already quoted) whose binary send
    form goes into the row record (FORMAT.md: int8, bool, float8, trim_scale(numeric),
    text, timestamp in UTC, date, bytea, jsonb), whatever the target column's type."""
    t = (target_type or "").split("(")[0].strip()
    if logical == "integer":
        # a numeric column: via text, so a fraction is an error, never a rounding
        return f"{col}::bigint" if not t or t in INT_TYPES else f"trim_scale({col}::numeric)::text::bigint"
    if logical == "boolean":
        return f"{col}::boolean"
    if logical == "float":
        return f"{col}::float8"
    if logical == "numeric":
        return f"trim_scale({col}::numeric)"
    if logical == "text":
        return f"{col}::text"
    if logical == "timestamp":
        if t in ("timestamptz", "timestamp with time zone"):
            return f"({col} AT TIME ZONE 'UTC')"
        return f"{col}::timestamp"
    if logical == "date":
        return f"{col}::date"
    if logical == "bytea":
        return f"{col}::bytea"
    if logical == "json":
        return f"{col}::jsonb"
    raise ValueError(f"unknown logical type {logical!r}")


def row_hash_sql(columns: list[dict], target_types: dict | None = None) -> str:
    """sha256 of the canonical row record, as one SQL expression (bytea).

    record_send() of a ROW() writes every column's binary send form in C: half the
    CPU of building a text row string with per-column SQL expressions."""
    target_types = target_types or {}
    vals = [canonical_expr(c["logical"], qi(c["name"]), target_types.get(c["name"]))
            for c in columns]
    return f"sha256(record_send(ROW({', '.join(vals)})))"


def digest_sql(schema: str, table: str, columns: list[dict], target_types: dict | None = None) -> str:
    """The table digest query. The set-returning ``unnest(ARRAY[h])`` keeps PostgreSQL
    from flattening the sub-select (which would hash each row once per sum) while the
    sums stay partial aggregates in the parallel workers (a MATERIALIZED CTE would
    leave them to the leader: 0.2 s more on 1M rows)."""
    h = row_hash_sql(columns, target_types)
    return (
        "SELECT count(*), "
        "coalesce(sum(('x'||encode(substr(h,1,8),'hex'))::bit(64)::bigint),0), "
        "coalesce(sum(('x'||encode(substr(h,9,8),'hex'))::bit(64)::bigint),0) "
        f"FROM (SELECT unnest(ARRAY[{h}]) AS h FROM {qn(schema, table)}) s"
    )


# Planner settings for the digest queries: a 2-worker parallel scan is worth it far
# below the default thresholds because the per-row work (hash of the row) is heavy;
# JIT compiling the wide ROW() expression costs more than it saves (measured on the
# 1M-row sample: 1.9 s without, 2.2 s with).
DIGEST_SETTINGS = (("parallel_setup_cost", "0"), ("parallel_tuple_cost", "0"),
                   ("min_parallel_table_scan_size", "0"), ("jit", "off"))


def set_digest_settings(cur, local: bool = True):
    for name, value in DIGEST_SETTINGS:
        cur.execute("SELECT set_config(%s, %s, %s)", (name, value, local))


def format_digest(count: int, s1, s2) -> str:
    return canonical.format_digest(int(count), int(s1), int(s2))


def table_digest(cur, schema: str, table: str, columns: list[dict],
                 target_types: dict | None = None) -> tuple[int, str]:
    """(row count, content digest string) of a PostgreSQL table."""
    cur.execute(digest_sql(schema, table, columns, target_types))
    count, s1, s2 = cur.fetchone()
    return int(count), format_digest(count, s1, s2)


def row_hashes_sql(schema: str, table: str, columns: list[dict], key_columns: list[str],
                   target_types: dict | None = None) -> str:
    """SELECT key payloads..., sha256 (hex) per row: to locate the rows that differ."""
    by_name = {c["name"]: c for c in columns}
    target_types = target_types or {}
    h = row_hash_sql(columns, target_types)
    keys = [payload_expr(by_name[k]["logical"], qi(k), target_types.get(k)) for k in key_columns]
    return f"SELECT {''.join(k + ', ' for k in keys)}encode({h},'hex') FROM {qn(schema, table)}"
