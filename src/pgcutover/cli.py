"""``pgcutover`` command line: one sub-command per verb of docs/INTERFACES.md.

JSON results go to stdout, progress and errors to stderr; the exit status is
``PgcutoverError.exit_status`` (0 ok, 2 usage, 3 blockers, 4 export mismatch, 5
target, 6 target mismatch).  No password option exists on purpose: libpq reads it
from ``passfile=`` in the DSN, ``PGPASSFILE`` or ``PGPASSWORD``.  Engine modules are
imported lazily so each verb only needs its own dependencies.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from .errors import PgcutoverError


def _progress(line: str):
    print(line, file=sys.stderr, flush=True)


def _call(module: str, func: str, *args, **kwargs):
    return getattr(importlib.import_module("pgcutover." + module), func)(*args, **kwargs)


def _analyze(a):
    report = _call("analyze", "analyze", a.sqlite)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
            f.write("\n")
    if report["blockers"]:
        from .errors import BlockerError
        _emit(report)
        b = report["blockers"][0]
        raise BlockerError(f"{len(report['blockers'])} blocker(s) found", table=b["table"],
                           column=b.get("column"), details=report["blockers"])
    return report


def _conn(a) -> dict:
    return {"password": None, "schema": a.schema}


VERBS = {
    "sample-db": lambda a: _call("sample", "generate", a.out, pfa_records=a.pfa_records,
                                 seed=a.seed),
    "analyze": _analyze,
    "export": lambda a: _call("export", "export", a.sqlite, a.out, progress=_progress),
    "verify-export": lambda a: _call("verify_export", "verify_export", a.dir),
    "verify-source": lambda a: _call("verify_source", "verify_source", a.dir, a.sqlite),
    "plan": lambda a: _call("importer", "plan_import", a.dir, a.dsn,
                            schema_mode=a.schema_mode, replace=a.replace, **_conn(a)),
    "import": lambda a: _call("importer", "import_export", a.dir, a.dsn,
                              schema_mode=a.schema_mode, replace=a.replace,
                              progress=_progress, **_conn(a)),
    "verify-target": lambda a: _call("verify_target", "verify_target", a.dir, a.dsn,
                                     **_conn(a)),
    "backup-source": lambda a: _call("source_backup", "backup_source", a.sqlite, a.dest,
                                     label=a.label),
    "rollback": lambda a: _call("rollback", "rollback", a.sqlite, a.expected_sha256,
                                backups=a.backup or (), export_dir=a.export_dir, dsn=a.dsn,
                                password=None, schema=a.schema, force=a.force,
                                check_target_writes=not a.no_check_target_writes,
                                dry_run=a.dry_run),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgcutover", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    s = sub.add_parser("sample-db", help="generate the deterministic sample SQLite database")
    s.add_argument("out")
    s.add_argument("--pfa-records", type=int, default=0)
    s.add_argument("--seed", type=int, default=1)

    s = sub.add_parser("analyze", help="analyze a SQLite file (exit 3 on blockers)")
    s.add_argument("sqlite")
    s.add_argument("--out", help="also write the JSON report to this file")

    s = sub.add_parser("export", help="consistent export into a new/empty directory")
    s.add_argument("sqlite")
    s.add_argument("--out", required=True)

    s = sub.add_parser("verify-export", help="check an export directory against its manifest")
    s.add_argument("dir")

    s = sub.add_parser("verify-source", help="prove the SQLite file still equals the export")
    s.add_argument("dir")
    s.add_argument("sqlite")

    def pg(s, schema_mode=False):
        s.add_argument("dir")
        s.add_argument("--dsn", required=True, help="libpq DSN (no password: use passfile)")
        s.add_argument("--schema", default="public")
        if schema_mode:
            s.add_argument("--schema-mode", choices=("auto", "existing"), default="auto")
            s.add_argument("--replace", action="store_true")

    pg(sub.add_parser("plan", help="what import would do (read-only)"), True)
    pg(sub.add_parser("import", help="import an export into PostgreSQL"), True)
    pg(sub.add_parser("verify-target", help="compare PostgreSQL with the manifest"))

    s = sub.add_parser("backup-source", help="checksummed backups of the SQLite file")
    s.add_argument("sqlite")
    s.add_argument("--dest", action="append", required=True)
    s.add_argument("--label")

    s = sub.add_parser("rollback", help="restore the SQLite source (refuses on PG writes)")
    s.add_argument("sqlite")
    s.add_argument("--expected-sha256", required=True)
    s.add_argument("--backup", action="append")
    s.add_argument("--export-dir")
    s.add_argument("--dsn")
    s.add_argument("--schema", default="public")
    s.add_argument("--force", action="store_true")
    s.add_argument("--no-check-target-writes", action="store_true")
    s.add_argument("--dry-run", action="store_true")
    return p


def _emit(obj):
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = VERBS[args.verb](args)
    except PgcutoverError as exc:
        print(f"pgcutover {args.verb}: {exc}", file=sys.stderr)
        for d in exc.details[:50]:
            print("  " + json.dumps(d, ensure_ascii=False, default=str), file=sys.stderr)
        return exc.exit_status
    try:
        _emit(result)
    except BrokenPipeError:  # e.g. piped into `head`: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
