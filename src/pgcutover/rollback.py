"""Roll the application back to its SQLite source, provably.

Two questions, answered separately and both reported:

* ``rollback_source``: is the SQLite file exactly the pre-migration snapshot (sha256 of
  the main file, no WAL content, no hot journal)? If not, restore it atomically from
  the first backup whose own checksum verifies and equals the expected one, keep the
  replaced file aside, and prove the result. A second run finds nothing to do.
* ``detect_target_writes``: did the application write to PostgreSQL after the cutover?
  Those rows would be lost by going back, so ``rollback`` refuses unless forced.

``expected_sha256`` is ``backup_source(...)["sha256"]`` (equal to the source file's
sha256 whenever the backup was a locked byte copy, the normal case with the app stopped).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

from .errors import SourceError, TargetError, UsageError
from .manifest import fsync_dir, load_manifest
from .source_backup import (CHUNK, SIDE_SUFFIXES, has_pending_changes,
                            read_sidecar, sha256_file, sqlite_fingerprint, sqlite_holders)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TargetWritesDetected(TargetError):
    """PostgreSQL holds data the export did not: rolling back would lose it."""
    code = "target_writes"


class SourceInUse(SourceError):
    """A process still holds the SQLite file: replacing it under the app corrupts data."""
    code = "source_in_use"


def _source_state(path: Path, expected: str) -> dict:
    if not path.exists():
        return {"exists": False, "matches": False, "fingerprint": None}
    fp = sqlite_fingerprint(path)
    return {"exists": True, "fingerprint": fp,
            "matches": fp["sha256"] == expected and not has_pending_changes(fp)}


def _check_backup(backup, expected: str) -> str | None:
    """None when the backup can be restored, else why not (no file contents)."""
    b = Path(backup)
    if not b.is_file():
        return "missing"
    recorded = read_sidecar(b)
    if recorded is None:
        return "no valid .sha256 next to it"
    if sha256_file(b) != recorded:
        return "checksum mismatch (corrupt or tampered)"
    if recorded != expected:
        return "verifies, but is a different snapshot than expected_sha256"
    return None


def plan_rollback(sqlite_path, expected_sha256, backups=()) -> dict:
    """What ``rollback_source`` would do; reads only."""
    expected = (expected_sha256 or "").lower()
    if not HEX64.match(expected):
        raise UsageError("expected_sha256 must be 64 hex digits")
    path = Path(sqlite_path)
    state = _source_state(path, expected)
    plan = {"sqlite_path": str(path), "expected_sha256": expected,
            "source_matches": state["matches"], "before": state["fingerprint"],
            "restore_from": None, "skipped_backups": [], "holders": []}
    if state["matches"]:
        return plan
    for b in backups or ():
        reason = _check_backup(b, expected)
        if reason is None:
            plan["restore_from"] = str(b)
            break
        plan["skipped_backups"].append({"path": str(b), "reason": reason})
    plan["holders"] = sqlite_holders(path)
    return plan


def _copy_verified(src: Path, tmp: Path, expected: str):
    h = hashlib.sha256()
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != expected:
        tmp.unlink()
        raise SourceError(f"backup changed while it was being restored: {src}")


def _aside_name(p: Path) -> Path:
    ts = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside, n = Path(f"{p}.pre-rollback-{ts}"), 0
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = Path(f"{p}.pre-rollback-{ts}-{n}")
    return aside


def _set_aside(path: Path) -> list[str]:
    """Keep what is about to be replaced. Side files go first: a hot journal or WAL
    left next to the restored file would be replayed into it by the next opener.
    Content is kept aside, ``-shm`` (an index, rebuilt) and empty files dropped."""
    kept = []
    for suffix in SIDE_SUFFIXES:
        side = Path(str(path) + suffix)
        if not side.exists():
            continue
        if suffix != "-shm" and side.stat().st_size:
            aside = _aside_name(side)
            os.replace(side, aside)
            kept.append(str(aside))
        else:
            side.unlink()
    if path.exists():
        aside = _aside_name(path)
        os.link(path, aside)  # the old file stays reachable; no moment without a DB file
        kept.insert(0, str(aside))
    return kept


def rollback_source(sqlite_path, expected_sha256, backups=(), force=False) -> dict:
    """Make ``sqlite_path`` equal the snapshot ``expected_sha256``; idempotent.

    ``force`` only overrides the "a process still holds the file" refusal."""
    plan = plan_rollback(sqlite_path, expected_sha256, backups)
    result = dict(plan, changed=False, after=plan["before"], replaced_kept_as=[])
    if plan["source_matches"]:
        return result
    path = Path(sqlite_path)
    if plan["restore_from"] is None:
        raise SourceError(
            f"{path.name} differs from the expected snapshot and no backup verifies; "
            "nothing was changed", details=plan["skipped_backups"] or ["no backups given"])
    if plan["holders"] and not force:
        raise SourceInUse(
            f"{path.name} is held open by pid(s) "
            + ", ".join(str(h["pid"]) for h in plan["holders"])
            + ": stop the application first (force overrides)", details=plan["holders"])

    expected = plan["expected_sha256"]
    path = path.resolve()  # SQLite names side files after the real file, not a symlink
    # The app must be able to open the restored file: same owner and mode as the file
    # it replaces (or the directory's owner, 0600, when the file is gone).
    st = path.stat() if path.exists() else None
    owner = (st.st_uid, st.st_gid) if st else (path.parent.stat().st_uid,
                                               path.parent.stat().st_gid)
    mode = (st.st_mode & 0o777) if st else 0o600
    tmp = path.with_name(f".{path.name}.rollback-{os.getpid()}.tmp")
    _copy_verified(Path(plan["restore_from"]), tmp, expected)
    try:
        try:
            os.chown(tmp, *owner)
        except PermissionError:
            raise SourceError(f"cannot give the restored {path.name} its owner uid "
                              f"{owner[0]}; run the rollback as root or as that user"
                              ) from None
        os.chmod(tmp, mode)
        kept = _set_aside(path)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)

    after = _source_state(path, expected)
    if not after["matches"]:
        raise SourceError(f"{path.name} does not match expected_sha256 after the restore")
    result.update(changed=True, after=after["fingerprint"], replaced_kept_as=kept)
    return result


# -- writes made on PostgreSQL after the cutover ---------------------------------------

def detect_target_writes(export_dir, dsn, password=None, schema="public",
                         max_keys=10) -> dict:
    """Per table: rows and content digest in PostgreSQL vs the export manifest, plus
    up to ``max_keys`` primary keys of rows that differ (keys only, never values).

    Any difference means the application wrote to PostgreSQL after the import. Tables
    the import skipped (recorded in its marker) are not compared."""
    import psycopg2

    from . import compat, control
    from .pgconn import connect, pg_error_summary
    from .pgdigest import table_digest
    from .verify_target import differing_keys

    manifest = load_manifest(export_dir)
    tables, problems = {}, []
    conn = connect(dsn, password)
    try:
        conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
        with conn.cursor() as cur:
            marker = control.latest_import(cur, schema)
            skipped = set((marker or {}).get("skipped_tables") or [])
            if marker is None:
                problems.append("no pgcutover import marker in this schema")
            elif marker["manifest_digest"] != manifest["manifest_digest"]:
                problems.append("the last import into this schema was a different export")
            catalog = compat.target_catalog(cur, schema)
            for name in manifest["load_order"]:
                if name in skipped:
                    continue
                spec = manifest["tables"][name]
                entry = {"expected_rows": spec["rows"], "expected_digest": spec["content_digest"],
                         "actual_rows": None, "actual_digest": None, "differs": True}
                have = catalog.get(name)
                if have is None or any(c["name"] not in have for c in spec["columns"]):
                    entry["reason"] = "table or column missing in PostgreSQL"
                else:
                    types = {c: v["type"] for c, v in have.items()}
                    rows, digest = table_digest(cur, schema, name, spec["columns"], types)
                    entry.update(actual_rows=rows, actual_digest=digest,
                                 differs=digest != spec["content_digest"])
                    if entry["differs"] and max_keys:
                        entry["keys"] = [dict(key=k, problem=p) for k, p in differing_keys(
                            cur, export_dir, manifest, schema, name, types, limit=max_keys)]
                tables[name] = entry
    except psycopg2.Error as exc:
        raise TargetError(f"cannot compare PostgreSQL with the export: "
                          f"{pg_error_summary(exc)}") from None
    finally:
        conn.rollback()
        conn.close()
    differing = [t for t, e in tables.items() if e["differs"]]
    return {"writes_detected": bool(differing or problems), "differing_tables": differing,
            "problems": problems, "skipped_tables": sorted(skipped), "tables": tables,
            "schema": schema}


def rollback(sqlite_path, expected_sha256, backups=(), export_dir=None, dsn=None,
             password=None, schema="public", force=False, check_target_writes=True,
             dry_run=False) -> dict:
    """The whole rollback decision: refuse when PostgreSQL holds post-cutover writes
    (unless ``force``), then restore the SQLite source. ``dry_run`` only plans.

    ``force`` accepts losing post-cutover writes; it never overrides the refusal to
    replace a SQLite file that a process still holds open (stop the app instead)."""
    result = {"target": None}
    if check_target_writes:
        if not (export_dir and dsn):
            raise UsageError("check_target_writes needs export_dir and dsn")
        target = detect_target_writes(export_dir, dsn, password, schema)
        result["target"] = target
        if target["writes_detected"] and not force:
            details = [{"table": t, **{k: v for k, v in target["tables"][t].items()
                                        if k != "differs"}}
                       for t in target["differing_tables"]]
            details += [{"problem": p} for p in target["problems"]]
            where = ", ".join(target["differing_tables"] + target["problems"])
            raise TargetWritesDetected(
                f"PostgreSQL differs from the export ({where}): writes made after the "
                "cutover would be lost by rolling back to SQLite (force overrides)",
                table=(target["differing_tables"] or [None])[0], details=details)
    if dry_run:
        plan = plan_rollback(sqlite_path, expected_sha256, backups)
        result.update(plan, changed=not plan["source_matches"])
        if not plan["source_matches"] and plan["restore_from"] is None:
            raise SourceError("SQLite source differs from the expected snapshot and no "
                              "backup verifies", details=plan["skipped_backups"])
        return result
    result.update(rollback_source(sqlite_path, expected_sha256, backups, force=False))
    return result
