"""manifest.json of an export directory: naming, digest, atomic write, loading.

Shared by the source side (export, verify-export, verify-source) and the target side
(import, verify-target, rollback): ``load_manifest(export_dir)`` is the one loader.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .errors import ExportVerificationError, UsageError

MANIFEST = "manifest.json"
FORMAT_NAME = "pgcutover-export"
FORMAT_VERSION = 2   # 2: content digest over binary row records (sha256); 1: text rows, md5


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def manifest_digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_digest"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def rows_file_name(position: int, table: str) -> str:
    return "%03d-%s.rows" % (position, re.sub(r"[^A-Za-z0-9_]", "_", table))


def fsync_dir(path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(export_dir, manifest: dict) -> dict:
    """Add ``manifest_digest`` and write manifest.json atomically (temp, fsync, rename)."""
    manifest = dict(manifest)
    manifest["manifest_digest"] = manifest_digest(manifest)
    d = Path(export_dir)
    tmp = d / ".manifest.json.tmp"
    data = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, d / MANIFEST)
    fsync_dir(d)
    return manifest


def load_manifest(export_dir, check_digest: bool = True) -> dict:
    """Parse and check manifest.json (format, version, digest)."""
    d = Path(export_dir)
    if not d.is_dir():
        raise UsageError(f"export directory not found: {d}")
    p = d / MANIFEST
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ExportVerificationError(
            f"no {MANIFEST} in {d}: not a complete export", key=MANIFEST,
            details=[{"file": MANIFEST, "problem": "missing"}]) from None
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ExportVerificationError(f"{MANIFEST} is not valid JSON", key=MANIFEST,
                                      details=[{"file": MANIFEST, "problem": "altered"}]
                                      ) from None
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise ExportVerificationError(f"{MANIFEST} is not a pgcutover export manifest",
                                      key=MANIFEST)
    if m.get("format_version") != FORMAT_VERSION:
        raise ExportVerificationError(
            f"unsupported export format_version {m.get('format_version')!r} (this pgcutover "
            f"reads version {FORMAT_VERSION}: export again with it)", key=MANIFEST)
    if check_digest and m.get("manifest_digest") != manifest_digest(m):
        raise ExportVerificationError(
            f"{MANIFEST} digest mismatch: the manifest was altered", key=MANIFEST,
            details=[{"file": MANIFEST, "problem": "altered"}])
    return m


def table_columns(manifest: dict, table: str) -> list[dict]:
    return manifest["tables"][table]["columns"]
