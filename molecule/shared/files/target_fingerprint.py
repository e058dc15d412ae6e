#!/usr/bin/env python3
"""Fingerprint of what a PostgreSQL database holds outside the system schemas.

Printed as JSON: every relation (schema, name, kind), its columns and types, the exact
row count of every table, and a SHA-256 over all of it. The molecule scenarios take
one before a cutover step and compare after it: a failed or dry-run import must leave
the target exactly as it was. Usage: target_fingerprint.py --dsn DSN (password from
the DSN's passfile= or PGPASSFILE, never argv).
"""
from __future__ import annotations

import argparse
import hashlib
import json

import psycopg2

RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind::text,
       coalesce(string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                           ', ' ORDER BY a.attnum), '')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
GROUP BY n.nspname, c.relname, c.relkind
ORDER BY 1, 2
"""


def fingerprint(dsn: str) -> dict:
    conn = psycopg2.connect(dsn, application_name="pgcutover-molecule")
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute(RELATIONS_SQL)
            relations = [list(r) for r in cur.fetchall()]
            counts = {}
            for schema, name, kind, _cols in relations:
                if kind in ("r", "p"):
                    cur.execute("SELECT count(*) FROM {}.{}".format(
                        '"' + schema.replace('"', '""') + '"',
                        '"' + name.replace('"', '""') + '"'))
                    counts[f"{schema}.{name}"] = cur.fetchone()[0]
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                        "AND nspname <> 'information_schema' ORDER BY 1")
            schemas = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    body = {"schemas": schemas, "relations": relations, "row_counts": counts}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["sha256"] = hashlib.sha256(canonical).hexdigest()
    # Anything pgcutover created (tables, its control marker, its schema) by name.
    body["pgcutover_objects"] = [f"{s}.{n}" for s, n, _k, _c in relations
                                 if "pgcutover" in s.lower() or "pgcutover" in n.lower()]
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="libpq DSN (no password)")
    args = parser.parse_args()
    print(json.dumps(fingerprint(args.dsn), sort_keys=True))


if __name__ == "__main__":
    main()
