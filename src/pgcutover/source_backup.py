"""Checksummed backups of the SQLite source, taken without ever writing to it.

The normal cutover case (app stopped, no WAL content) gets a *byte-identical* copy,
read while a read transaction holds SQLite's own lock (rollback-journal mode: SHARED
lock, no writer can commit; WAL mode: read mark 0, no checkpoint can backfill), so the
backup's sha256 equals the source file's sha256 and proves the restore point exactly.
When a ``-wal`` file holds content the main file alone is not the database: the copy
then goes through the SQLite backup API (consistent, but not byte-identical to the
main file; ``identical_to_source`` says which).

Every copy is 0600 in a 0700 directory, has a ``<file>.sha256`` next to it in
``sha256sum`` format (``cd DIR && sha256sum -c FILE.sha256`` works on any host) and is
re-read after writing. The rollback restores to ``result["sha256"]``.
"""
from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

from .errors import SourceError, UsageError
from .manifest import fsync_dir
from .sqlite_source import changed_since_open, open_readonly, open_snapshot, snapshot

CHUNK = 1 << 20
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sqlite_fingerprint(path, hash_main: bool = True) -> dict:
    """sha256/size/mtime of the main file, and of ``-wal`` when present.

    ``wal_sha256`` is None when there is no ``-wal`` file; an empty ``-wal`` (left by
    a read-only reader of a WAL database) has ``wal_size`` 0 and holds no data."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise UsageError(f"SQLite file not found: {p}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"not a regular file: {p}")
    out = {"path": str(p.resolve()), "sha256": sha256_file(p) if hash_main else None,
           "size": st.st_size,
           "mtime": _iso(st.st_mtime), "mtime_ns": st.st_mtime_ns,
           "wal_sha256": None, "wal_size": None, "journal_size": None}
    wal = Path(str(p) + "-wal")
    if wal.exists():
        out["wal_sha256"] = sha256_file(wal)
        out["wal_size"] = wal.stat().st_size
    journal = Path(str(p) + "-journal")
    if journal.exists():
        out["journal_size"] = journal.stat().st_size
    return out


def has_pending_changes(fp: dict) -> bool:
    """True when side files mean the main file alone is not the database (WAL frames
    or a hot rollback journal)."""
    return bool(fp.get("wal_size")) or bool(fp.get("journal_size"))


def sidecar_path(file) -> Path:
    return Path(str(file) + ".sha256")


def read_sidecar(file) -> str | None:
    """The sha256 recorded in ``<file>.sha256`` for this file name, or None."""
    try:
        text = sidecar_path(file).read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    m = re.match(r"^([0-9a-f]{64}) [ *](.+)\n?$", text)
    if not m or m.group(2) != Path(file).name:
        return None
    return m.group(1)


def verify_backup(file) -> bool:
    """The backup file exists and its sha256 equals the one recorded next to it."""
    recorded = read_sidecar(file)
    if recorded is None or not Path(file).is_file():
        return False
    return sha256_file(file) == recorded


def _prepare_dest(d) -> Path:
    d = Path(d)
    if d.is_symlink():
        raise UsageError(f"backup directory is a symlink: {d}")
    if not d.exists():
        d.mkdir(parents=True, mode=0o700)
        os.chmod(d, 0o700)
    if not d.is_dir():
        raise UsageError(f"backup destination is not a directory: {d}")
    if d.stat().st_mode & 0o077:
        raise UsageError(f"backup directory must be mode 0700 (no group/other access): {d}")
    return d.resolve()


def _new_private_file(path: Path):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _stream_copy(src: Path, temps: list[Path], fsync_src: bool = False) -> str:
    """Stream ``src`` into every temp file (0600, fsynced); return its sha256."""
    h = hashlib.sha256()
    outs = [_new_private_file(t) for t in temps]
    try:
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
                for o in outs:
                    o.write(chunk)
            if fsync_src:
                os.fsync(f.fileno())
        for o in outs:
            o.flush()
            os.fsync(o.fileno())
    finally:
        for o in outs:
            o.close()
    return h.hexdigest()


def _take_copy(src: Path, temps: list[Path]) -> tuple[str, bool, str, dict]:
    """(method, identical_to_source, sha256 of the copy, source fingerprint)."""
    for _attempt in range(5):
        fp = sqlite_fingerprint(src, hash_main=False)
        if fp["wal_size"]:
            # The main file alone is not the database: consistent snapshot via the
            # backup API (export's own snapshot routine), then the same bytes everywhere.
            fp["sha256"] = sha256_file(src)  # informative: the main file alone
            snapshot(src, temps[0])
            # the snapshot's bytes to the other copies; its sha256 on the same read
            return "backup-api", False, _stream_copy(temps[0], temps[1:], fsync_src=True), fp
        # No side-file content: the main file is the database. Copy it byte for byte
        # inside a read transaction (sqlite_source's no-side-files read-only open).
        conn = open_readonly(src)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            # Under the read lock a -journal is a writer's in-progress (not hot: a hot
            # one makes the read above fail) and cannot reach the main file before
            # COMMIT; only WAL content means the main file is not the whole database.
            fp = sqlite_fingerprint(src, hash_main=False)
            if fp["wal_size"]:
                continue
            digest = _stream_copy(src, temps)
            after = sqlite_fingerprint(src, hash_main=False)
            conn.execute("COMMIT")
            changed = changed_since_open(conn) or bool(after["wal_size"]) or \
                (after["size"], after["mtime_ns"]) != (fp["size"], fp["mtime_ns"])
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read SQLite source: {exc}") from None
        finally:
            conn.close()
        if not changed:
            fp["sha256"] = digest
            return "locked-copy", True, digest, fp
        for t in temps:
            t.unlink(missing_ok=True)
    raise SourceError("the SQLite source kept changing while it was copied; stop the writer")


def _quick_check(file: Path) -> str:
    conn = open_snapshot(file)  # immutable: no locks, no side files next to the backup
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"error: {exc}"
    finally:
        conn.close()
    return "ok" if rows == [("ok",)] else "failed"


def _write_sidecar(file: Path, digest: str):
    side = sidecar_path(file)
    tmp = side.with_name(f".{side.name}.tmp")
    with _new_private_file(tmp) as f:
        f.write(f"{digest}  {file.name}\n".encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, side)


def backup_source(sqlite_path, dests, label=None) -> dict:
    """Copy the SQLite database into every directory of ``dests`` (one consistent
    snapshot, same bytes everywhere) as ``<name>.backup-<label>``; never overwrite a
    different backup. Re-running with the same label and an unchanged source is a
    no-op (``changed`` False)."""
    src = Path(sqlite_path)
    if not dests:
        raise UsageError("at least one backup destination directory is required")
    label = label or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if not LABEL_RE.match(label):
        raise UsageError("backup label may hold only letters, digits, '.', '_', '-'")
    sqlite_fingerprint(src, hash_main=False)  # exists, regular file
    dirs = [_prepare_dest(d) for d in dests]
    if len(set(dirs)) != len(dirs):
        raise UsageError("backup destinations must be distinct directories")
    name = f"{src.name}.backup-{label}"
    temps = [d / f".{name}.{os.getpid()}.tmp" for d in dirs]

    t0 = time.monotonic()
    try:
        method, identical, digest, fp = _take_copy(src, temps)
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise

    quick = _quick_check(temps[0])
    if quick != "ok":
        for t in temps:
            t.unlink(missing_ok=True)
        raise SourceError(f"backup copy fails PRAGMA quick_check ({quick}); source not trusted")

    copies, conflicts = [], []
    for d, tmp in zip(dirs, temps):
        final = d / name
        if final.exists():
            tmp.unlink()
            if read_sidecar(final) == digest and verify_backup(final):
                copies.append({"path": str(final), "created": False})
                continue
            conflicts.append(str(final))
            continue
        os.replace(tmp, final)
        _write_sidecar(final, digest)
        fsync_dir(d)
        copies.append({"path": str(final), "created": True})
    if conflicts:
        raise UsageError("a different backup with this label already exists (never "
                         "overwritten): " + ", ".join(conflicts), details=conflicts)

    # Re-read every copy from disk against its sidecar.
    for c in copies:
        c["sha256_file"] = str(sidecar_path(c["path"]))
        c["verified"] = verify_backup(c["path"])
        if not c["verified"]:
            raise SourceError(f"backup copy does not verify after writing: {c['path']}")
    return {
        "changed": any(c["created"] for c in copies),
        "label": label,
        "file_name": name,
        "method": method,
        "identical_to_source": identical,
        "sha256": digest,
        "size": Path(copies[0]["path"]).stat().st_size,
        "quick_check": quick,
        "source": fp,
        "copies": copies,
        "seconds": round(time.monotonic() - t0, 3),
    }


def sqlite_holders(sqlite_path) -> list[dict]:
    """Processes holding the SQLite file or its side files open (Linux /proc scan).

    Covers what ``fuser``/``lsof`` would report for this pid namespace; processes we
    may not inspect are reported with ``path`` None so they are not silently missed."""
    main = Path(sqlite_path).resolve()
    targets = {str(main)} | {str(main) + s for s in SIDE_SUFFIXES}
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        fd_dir = f"/proc/{entry.name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except (PermissionError, FileNotFoundError, ProcessLookupError):
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target in targets:
                try:
                    with open(f"/proc/{entry.name}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    comm = None
                found.append({"pid": int(entry.name), "command": comm, "path": target})
    return found
