"""verify-export: does an export directory still match its manifest?  (No PostgreSQL.)

Per file: size first (cheap, catches truncation), then SHA-256 and the row count
(line count) in one read.  Every problem is collected — missing, extra, truncated,
altered files — and reported together by file name.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import ExportVerificationError, UsageError
from .manifest import MANIFEST, load_manifest

CHUNK = 1 << 20


def _hash_and_count(path: Path, count_lines: bool = True) -> tuple[str, int | None]:
    h = hashlib.sha256()
    lines = 0 if count_lines else None
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            if count_lines:
                lines += chunk.count(b"\n")
    return h.hexdigest(), lines


def verify_export(export_dir, count_lines: bool = True) -> dict:
    """``count_lines=False`` skips the line count (a third of the time): for the
    importer, whose COPY row counts are checked against the manifest anyway."""
    d = Path(export_dir)
    if d.is_symlink():
        raise UsageError(f"export directory is a symlink: {d}")
    problems: list[dict] = []
    manifest = load_manifest(d)  # raises on missing/altered manifest (digest)
    tables = manifest["tables"]
    expected = {MANIFEST} | {t["file"] for t in tables.values()}
    results = {}
    for table in manifest["load_order"]:
        t = tables[table]
        p = d / t["file"]
        res = {"file": t["file"], "rows": t["rows"], "ok": False}
        results[table] = res
        if p.is_symlink() or not p.is_file():
            problems.append({"file": t["file"], "table": table, "problem": "missing"})
            continue
        size = p.stat().st_size
        if size != t["size"]:
            problems.append({"file": t["file"], "table": table,
                             "problem": "truncated" if size < t["size"] else "size_mismatch",
                             "expected_size": t["size"], "actual_size": size})
            continue
        sha, lines = _hash_and_count(p, count_lines)
        if sha != t["sha256"]:
            problems.append({"file": t["file"], "table": table, "problem": "altered",
                             "expected_sha256": t["sha256"], "actual_sha256": sha})
            continue
        if lines is not None and lines != t["rows"]:
            problems.append({"file": t["file"], "table": table, "problem": "row_count",
                             "expected_rows": t["rows"], "actual_rows": lines})
            continue
        res["ok"] = True
    for name in sorted(os.listdir(d)):
        if name not in expected:
            problems.append({"file": name, "table": None, "problem": "extra"})
    report = {"ok": not problems, "export_dir": str(d.resolve()),
              "manifest_digest": manifest["manifest_digest"],
              "tables": results, "total_rows": sum(t["rows"] for t in tables.values()),
              "problems": problems}
    if problems:
        raise ExportVerificationError(
            "export does not match its manifest: " + "; ".join(
                f"{p['file']}: {p['problem']}" for p in problems),
            table=problems[0].get("table"), key=problems[0]["file"], details=problems)
    return report
