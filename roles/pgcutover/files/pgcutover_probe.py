#!/usr/bin/env python3
"""Read-only probes the runbook runs on the engine/db host; prints one JSON object.

  pgcutover_probe.py disk PATH [PATH ...]   free bytes of the filesystem holding each PATH
                                          (nearest existing parent) and size of each file
  pgcutover_probe.py versions               pgcutover, Python, SQLite, psycopg2 versions
  pgcutover_probe.py pg                     server version, user, database (needs pgcutover)
  pgcutover_probe.py analyze SCHEMA         ANALYZE every table of SCHEMA
  pgcutover_probe.py reset-rehearsal SCHEMA drop every table of SCHEMA and the pgcutover
                                          control schema (rehearsal_setup.yml only)

PostgreSQL: DSN from $PGCUTOVER_DSN, password (if any) from $PGPASSWORD, through
pgcutover.pgconn.connect, the engine's one connection point. No row data is read.
"""
import json
import os
import shutil
import sys


def disk(paths):
    out = {}
    for p in paths:
        probe = os.path.abspath(p)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        out[p] = {"free": shutil.disk_usage(probe).free, "checked_at": probe,
                  "size": os.path.getsize(p) if os.path.isfile(p) else None}
    return out


def versions():
    import sqlite3
    out = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    try:
        import pgcutover
        out["pgcutover"] = pgcutover.__version__
    except ImportError:
        out["pgcutover"] = None
    try:
        import psycopg2
        out["psycopg2"] = psycopg2.__version__.split()[0]
    except ImportError:
        out["psycopg2"] = None
    return out


def _conn():
    from pgcutover.pgconn import connect
    return connect(os.environ["PGCUTOVER_DSN"], os.environ.get("PGPASSWORD") or None)


def pg():
    conn = _conn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version_num')::int, "
                        "current_setting('server_version'), current_user, current_database()")
            num, ver, user, db = cur.fetchone()
    finally:
        conn.close()
    return {"server_version_num": num, "server_version": ver, "user": user, "database": db}


def _tables(cur, schema):
    """The schema's tables (plain and partitioned), by name."""
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s "
                "AND c.relkind IN ('r', 'p') ORDER BY 1", (schema,))
    return [r[0] for r in cur.fetchall()]


def analyze(schema):
    from psycopg2 import sql
    conn = _conn()
    conn.autocommit = True
    tables = []
    try:
        with conn.cursor() as cur:
            tables = _tables(cur, schema)
            for t in tables:
                cur.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema),
                                                           sql.Identifier(t)))
    finally:
        conn.close()
    return {"analyzed": tables}


def reset_rehearsal(schema):
    from psycopg2 import sql
    conn = _conn()
    dropped = []
    try:
        with conn.cursor() as cur:
            dropped = _tables(cur, schema)
            for t in dropped:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{} CASCADE").format(
                    sql.Identifier(schema), sql.Identifier(t)))
            cur.execute("DROP SCHEMA IF EXISTS pgcutover CASCADE")
        conn.commit()
    finally:
        conn.close()
    return {"dropped_tables": dropped, "changed": bool(dropped)}


def main(argv):
    cmd, args = argv[0], argv[1:]
    result = {"disk": lambda: disk(args), "versions": versions, "pg": pg,
              "analyze": lambda: analyze(args[0]),
              "reset-rehearsal": lambda: reset_rehearsal(args[0])}[cmd]()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
