"""The ``pgcutover`` control schema: one marker row per committed import.

The marker is written in the import's own transaction, so it exists if and only if
the data does. It records what was imported (manifest digest, per-table counts and
digests), when, by which tool version, and which tables pgcutover created (``auto``
mode): ``--replace`` only ever drops tables recorded here.
"""
from __future__ import annotations

import json

from . import __version__
from .pgconn import qi

CONTROL_SCHEMA = "pgcutover"
# pg_advisory lock key: "pgcutover" folded to an int64; one import at a time per cluster.
LOCK_KEY = 0x7067637574_6f76
LOCK_SQL = f"SELECT pg_try_advisory_xact_lock({LOCK_KEY})"


def ddl() -> list[str]:
    s = qi(CONTROL_SCHEMA)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {s}.imports (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    manifest_digest text        NOT NULL,
    target_schema   text        NOT NULL,
    schema_mode     text        NOT NULL,
    status          text        NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    tool_version    text        NOT NULL,
    export_created_at text,
    source_sha256   text,
    tables          jsonb       NOT NULL,
    skipped_tables  jsonb       NOT NULL DEFAULT '[]'
)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.owned_tables (
    target_schema text   NOT NULL,
    table_name    text   NOT NULL,
    import_id     bigint NOT NULL REFERENCES {s}.imports (id),
    PRIMARY KEY (target_schema, table_name)
)""",
    ]


def control_exists(cur) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{qi(CONTROL_SCHEMA)}.imports",))
    return cur.fetchone()[0]


def latest_import(cur, schema: str) -> dict | None:
    """The last committed import into ``schema`` (None if there is none)."""
    if not control_exists(cur):
        return None
    cur.execute(
        f"SELECT id, manifest_digest, schema_mode, status, started_at, finished_at, "
        f"tool_version, tables, skipped_tables FROM {qi(CONTROL_SCHEMA)}.imports "
        f"WHERE target_schema = %s ORDER BY id DESC LIMIT 1", (schema,))
    row = cur.fetchone()
    if not row:
        return None
    keys = ("id", "manifest_digest", "schema_mode", "status", "started_at", "finished_at",
            "tool_version", "tables", "skipped_tables")
    out = dict(zip(keys, row))
    for k in ("started_at", "finished_at"):
        out[k] = out[k].isoformat() if out[k] else None
    return out


def owned_tables(cur, schema: str) -> set[str]:
    if not control_exists(cur):
        return set()
    cur.execute(f"SELECT table_name FROM {qi(CONTROL_SCHEMA)}.owned_tables "
                f"WHERE target_schema = %s", (schema,))
    return {r[0] for r in cur.fetchall()}


def write_marker(cur, *, manifest: dict, schema: str, schema_mode: str, started_at,
                 tables: dict, skipped: list[str], created: list[str]) -> int:
    """Insert the marker row (finished_at = now, inside the import transaction)."""
    s = qi(CONTROL_SCHEMA)
    for stmt in ddl():
        cur.execute(stmt)
    cur.execute(
        f"INSERT INTO {s}.imports (manifest_digest, target_schema, schema_mode, status, "
        f"started_at, finished_at, tool_version, export_created_at, source_sha256, tables, "
        f"skipped_tables) VALUES (%s, %s, %s, 'complete', %s, clock_timestamp(), %s, %s, %s, "
        f"%s::jsonb, %s::jsonb) RETURNING id",
        (manifest["manifest_digest"], schema, schema_mode, started_at, __version__,
         manifest.get("created_at"), (manifest.get("source") or {}).get("sha256"),
         json.dumps(tables, sort_keys=True), json.dumps(skipped)))
    import_id = cur.fetchone()[0]
    if created:
        cur.execute(f"DELETE FROM {s}.owned_tables WHERE target_schema = %s "
                    f"AND table_name = ANY(%s)", (schema, created))
        cur.executemany(f"INSERT INTO {s}.owned_tables VALUES (%s, %s, %s)",
                        [(schema, t, import_id) for t in created])
    return import_id
