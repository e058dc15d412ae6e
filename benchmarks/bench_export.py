#!/usr/bin/env python3
"""Export benchmark: 1M-row pfa_records sample -> `pgcutover export` in a child process.

Prints wall time, rows/s, CPU seconds of the child (user+sys: on a shared machine the
wall clock also measures the neighbours) and its peak RSS (resource.getrusage
RUSAGE_CHILDREN).  Targets: >= 50,000 rows/s, peak RSS < 200 MB.

    .venv/bin/python benchmarks/bench_export.py [--rows 1000000] [--workdir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from pgcutover import sample  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=None, help="reuses <workdir>/bench-<rows>.db")
    ap.add_argument("--keep", action="store_true", help="keep the export directory")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="pgcutover-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"bench-{a.rows}.db"
    if not db.exists():
        t = time.monotonic()
        sample.generate(db, pfa_records=a.rows)
        print(f"generated {db} ({db.stat().st_size / 1e6:.0f} MB) in "
              f"{time.monotonic() - t:.1f} s", file=sys.stderr)
    out = work / "export"
    if out.exists():
        shutil.rmtree(out)
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pgcutover.cli", "export", str(db),
                        "--out", str(out)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src")))
    wall = time.monotonic() - t
    if r.returncode:
        sys.exit(f"export failed ({r.returncode}): {r.stderr}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(r.stdout)
    rows = summary["total_rows"]
    cpu = ru.ru_utime + ru.ru_stime
    result = {
        "rows": rows, "db_mb": round(db.stat().st_size / 1e6),
        "wall_s": round(wall, 2), "rows_per_s_wall": int(rows / wall),
        "cpu_s": round(cpu, 2), "rows_per_cpu_s": int(rows / cpu),
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "export_mb": round(sum(f.stat().st_size for f in out.iterdir()) / 1e6),
        "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    print("per table: " + "; ".join(x for x in r.stderr.splitlines() if "pfa_records" in x),
          file=sys.stderr)
    if not a.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
