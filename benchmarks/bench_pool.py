#!/usr/bin/env python3
"""Load test of the connection pooler: pgbench through PgBouncer against the sample schema.

Everything is real: a throwaway PostgreSQL 15 cluster, the sample PFA data from
``pgcutover.sample`` (the seed's shape), PgBouncer configured by ``playbooks/pooling.yml``
(role ``pgbouncer``: transaction mode, SCRAM auth_file from pg_authid), and pgbench
running the seed's benchmark queries (the same SQL the ``health`` playbook times, read
from ``roles/pg_monitoring/defaults/main.yml``). p95 is computed from pgbench's
per-transaction logs (``--log``), not from its averages.

    .venv/bin/python benchmarks/bench_pool.py [--records 100000] [--clients 10,50,100]
                                              [--seconds 30] [--json out.json]

The tests (tests/test_pooling.py) import the helpers below and run a few seconds only.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pgcutover.throwaway_cluster import PG_BIN, ThrowawayCluster, free_port  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
APP_DB = "pfa_vanguard"
APP_USER = "pfa_app"
# The seed's load-test targets (p95 per concurrency level).
P95_TARGETS_MS = {10: 500, 50: 1000, 100: 2000}

# --- sample data ---------------------------------------------------------------------
# Until the importer (pgcutover.importer) is available here, the two tables the
# benchmark needs are created with the types Prisma uses on PostgreSQL (FACTS.md) and
# filled from the sample generator's SQLite file; once it is, the real export/import is
# used instead.
PG_DDL = '''
CREATE TABLE "organizations" (
    "id" text PRIMARY KEY, "code" text NOT NULL UNIQUE, "name" text NOT NULL,
    "isActive" boolean NOT NULL DEFAULT true,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL);
CREATE TABLE "pfa_records" (
    "id" text PRIMARY KEY,
    "organizationId" text NOT NULL REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    "pfaId" text NOT NULL, "areaSilo" text, "category" text, "class" text,
    "source" text NOT NULL, "dor" text,
    "isActualized" boolean NOT NULL DEFAULT false,
    "isDiscontinued" boolean NOT NULL DEFAULT false,
    "isFundsTransferable" boolean NOT NULL DEFAULT false,
    "monthlyRate" double precision, "purchasePrice" decimal(65,30),
    "manufacturer" text, "model" text,
    "originalStart" timestamp(3), "originalEnd" timestamp(3),
    "forecastStart" timestamp(3), "forecastEnd" timestamp(3),
    "actualStart" timestamp(3), "actualEnd" timestamp(3),
    "syncState" text NOT NULL DEFAULT 'pristine', "modifiedAt" timestamp(3),
    "modifiedBy" text, "syncVersion" integer NOT NULL DEFAULT 0,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL);
CREATE UNIQUE INDEX "pfa_records_organizationId_pfaId_key" ON "pfa_records"("organizationId", "pfaId");
CREATE INDEX "pfa_records_organizationId_areaSilo_category_idx" ON "pfa_records"("organizationId", "areaSilo", "category");
CREATE INDEX "pfa_records_organizationId_forecastStart_forecastEnd_idx" ON "pfa_records"("organizationId", "forecastStart", "forecastEnd");
CREATE INDEX "pfa_records_organizationId_syncState_modifiedAt_idx" ON "pfa_records"("organizationId", "syncState", "modifiedAt");
'''
_TS = ("CASE typeof({c}) WHEN 'integer' THEN strftime('%Y-%m-%d %H:%M:%f', {c} / 1000.0, "
       "'unixepoch') ELSE {c} END")
_BOOL = "CASE {c} WHEN 1 THEN 't' WHEN 0 THEN 'f' END"


def _copy_from_sqlite(cur, sconn, table: str, pg_columns: list[str], sqlite_exprs: list[str]):
    import io
    buf = io.StringIO()
    for row in sconn.execute("SELECT %s FROM \"%s\"" % (", ".join(sqlite_exprs), table)):
        buf.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\")
                            .replace("\t", "\\t").replace("\n", "\\n") for v in row) + "\n")
    buf.seek(0)
    cur.copy_expert('COPY "%s" (%s) FROM STDIN' % (
        table, ", ".join('"%s"' % c for c in pg_columns)), buf)


def load_sample(admin_dsn: str, pfa_records: int, workdir: Path) -> dict:
    """Create the app role and database and load the sample PFA data; returns
    ``{"app_password", "pfa_records", "loader"}``."""
    import psycopg2

    from pgcutover import sample

    app_password = secrets.token_urlsafe(18)
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        # PG 15 default password_encryption is scram-sha-256: pg_authid gets a SCRAM secret.
        cur.execute("CREATE ROLE %s LOGIN PASSWORD %%s" % APP_USER, (app_password,))
        cur.execute('CREATE DATABASE "%s" OWNER %s' % (APP_DB, APP_USER))
    conn.close()
    sqlite_path = workdir / "sample.db"
    sample.generate(sqlite_path, pfa_records=pfa_records, seed=1)
    app_dsn = admin_dsn.replace("dbname=postgres", f"dbname={APP_DB}")
    conn = psycopg2.connect(app_dsn)
    sconn = sqlite3.connect(str(sqlite_path))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET ROLE %s" % APP_USER)
            cur.execute(PG_DDL)
            _copy_from_sqlite(cur, sconn, "organizations",
                              ["id", "code", "name", "isActive", "createdAt", "updatedAt"],
                              ["id", "code", "name", _BOOL.format(c='"isActive"'),
                               _TS.format(c='"createdAt"'), _TS.format(c='"updatedAt"')])
            cols = [r[1] for r in sconn.execute('PRAGMA table_info("pfa_records")')]
            types = {r[1]: r[2] for r in sconn.execute('PRAGMA table_info("pfa_records")')}
            exprs = [(_TS if types[c] == "DATETIME" else _BOOL if types[c] == "BOOLEAN"
                      else "{c}").format(c='"%s"' % c) for c in cols]
            _copy_from_sqlite(cur, sconn, "pfa_records", cols, exprs)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        sconn.close()
        conn.close()
    return {"app_password": app_password, "pfa_records": pfa_records, "loader": "sqlite->copy"}


# --- Ansible -------------------------------------------------------------------------
def run_playbook(playbook: str, workdir: Path, extra_vars: dict, check: bool = False,
                 timeout: int = 300) -> subprocess.CompletedProcess:
    """ansible-playbook against localhost (group ``postgresql``); vars (secrets included)
    go through a 0600 file, never argv. Raises nothing: callers read rc/stdout."""
    inv = workdir / "inventory.yml"
    inv.write_text(
        "all:\n  children:\n    postgresql:\n      hosts:\n        pgtest:\n"
        "          ansible_connection: local\n"
        f"          ansible_python_interpreter: {VENV_BIN / 'python'}\n")
    vars_file = workdir / f"vars-{secrets.token_hex(4)}.json"
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(extra_vars, f)
    args = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), f"playbooks/{playbook}",
            "-e", f"@{vars_file}"]
    if check:
        args.append("--check")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    try:
        return subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env,
                              timeout=timeout)
    finally:
        vars_file.unlink()


def recap(stdout: str) -> dict:
    """The PLAY RECAP counters of the (single) host: ok/changed/failed/..."""
    for line in stdout.splitlines():
        if line.startswith("pgtest") and "changed=" in line:
            return {k: int(v) for k, v in (p.split("=") for p in line.split()[2:])}
    raise AssertionError("no PLAY RECAP line in ansible output:\n" + stdout[-3000:])


def private_workdir(prefix: str) -> Path:
    """A temp dir under /tmp the postgres user can traverse (pytest's are 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o711)
    return d


def pooler_vars(cluster: ThrowawayCluster, workdir: Path, app_password: str,
                listen_port: int, **overrides) -> dict:
    """Role variables for a daemon PgBouncer whose files all live under workdir."""
    pgb = workdir / "pgbouncer"
    v = {
        "pgbouncer_manage_package": False,
        "pgbouncer_service_mode": "daemon",
        "pgbouncer_conf_dir": str(pgb / "etc"),
        "pgbouncer_run_dir": str(pgb / "run"),
        "pgbouncer_log_dir": str(pgb / "log"),
        "pgbouncer_listen_port": listen_port,
        "pgbouncer_server_port": cluster.port,
        "pgbouncer_app_database": APP_DB,
        "pgbouncer_app_user": APP_USER,
        "pgbouncer_login_password": cluster.password,
        "vault_pgbouncer_app_password": app_password,
        "pgbouncer_app_env_file": str(workdir / "app-database.env"),
        "pgbouncer_default_pool_size": 20,
        "pgbouncer_max_client_conn": 250,
    }
    v.update(overrides)
    return v


def stop_pooler(workdir: Path):
    pid_file = workdir / "pgbouncer" / "run" / "pgbouncer.pid"
    if pid_file.exists():
        subprocess.run(["pkill", "-TERM", "-F", str(pid_file), "-x", "pgbouncer"],
                       capture_output=True)
        for _ in range(50):
            if not pid_file.exists():
                break
            time.sleep(0.1)


# --- pgbench -------------------------------------------------------------------------
# How each named parameter of the health queries is drawn per pgbench transaction
# (pgbench variables are numeric, so strings are picked from the sample's value lists).
def _pgbench_params() -> dict[str, tuple[str, str]]:
    from pgcutover import sample
    cats = ", ".join("'%s'" % c for c in sample.CATEGORIES)
    base = time.strftime("%Y-%m-%d", time.gmtime(sample.BASE_MS // 1000))
    return {
        "org": (r"\set org_i random(0, 27)",
                '(SELECT "id" FROM "organizations" ORDER BY "id" OFFSET :org_i LIMIT 1)'),
        "category": (r"\set cat_i random(1, %d)" % len(sample.CATEGORIES),
                     "(ARRAY[%s])[:cat_i]" % cats),
        "source": (r"\set src_i random(1, 2)", "(ARRAY['Rental', 'Purchase'])[:src_i]"),
        "range_start": (r"\set day_i random(0, 300)",
                        "('%s'::timestamp + :day_i * interval '1 day')" % base),
        "range_end": ("", "('%s'::timestamp + (:day_i + 90) * interval '1 day')" % base),
    }


def benchmark_queries() -> list[dict]:
    """The seed's benchmark queries, as the health playbook runs them."""
    import yaml
    defaults = yaml.safe_load((REPO / "roles/pg_monitoring/defaults/main.yml").read_text())
    return defaults["pg_monitoring_benchmark_queries"]


def write_pgbench_scripts(outdir: Path) -> list[tuple[str, Path]]:
    """One pgbench script per benchmark query (equal weights): a transaction = one query."""
    params = _pgbench_params()
    scripts = []
    for q in benchmark_queries():
        sql = " ".join(q["sql"].split())
        sets = []
        for name, (set_line, expr) in params.items():
            if "%%(%s)s" % name in sql:
                sql = sql.replace("%%(%s)s" % name, expr)
                if set_line:
                    sets.append(set_line)
        if "range_end" in q["sql"] and params["range_start"][0] not in sets:
            sets.append(params["range_start"][0])
        path = outdir / f"{q['name']}.sql"
        path.write_text("\n".join(sets + [sql + ";"]) + "\n")
        scripts.append((q["name"], path))
    return scripts


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def run_pgbench(host: str, port: int, user: str, password: str, dbname: str, clients: int,
                seconds: int, outdir: Path) -> dict:
    """Run pgbench with per-transaction logging; returns counts and latency percentiles (ms)
    overall and per query (script)."""
    outdir.mkdir(parents=True, exist_ok=True)
    scripts = write_pgbench_scripts(outdir)
    prefix = outdir / f"pgb-c{clients}"
    args = [str(PG_BIN / "pgbench") if (PG_BIN / "pgbench").exists() else "pgbench",
            "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
            "-M", "simple", "-l", "--log-prefix", str(prefix),
            "-h", host, "-p", str(port), "-U", user]
    for _, path in scripts:
        args += ["-f", f"{path}@1"]
    args.append(dbname)
    env = dict(os.environ, PGPASSWORD=password)  # libpq env, never argv
    started = time.time()
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=seconds + 120)
    elapsed = time.time() - started
    logs = sorted(outdir.glob(f"{prefix.name}.*"))
    lat: list[float] = []
    per_script: dict[int, list[float]] = {}
    failed = 0
    for log in logs:
        for line in log.read_text().splitlines():
            f = line.split()
            if len(f) < 6:
                continue
            if not f[2].isdigit():  # "failed" / "skipped" transactions
                failed += 1
                continue
            ms = int(f[2]) / 1000.0
            lat.append(ms)
            per_script.setdefault(int(f[3]), []).append(ms)
        log.unlink()
    lat.sort()
    result = {"clients": clients, "seconds": seconds, "rc": r.returncode,
              "transactions": len(lat), "failed": failed,
              "tps": round(len(lat) / seconds, 1), "wall_s": round(elapsed, 1),
              "pgbench_stderr_tail": r.stderr.strip().splitlines()[-3:]}
    if lat:
        result.update(p50_ms=round(percentile(lat, 50), 2), p95_ms=round(percentile(lat, 95), 2),
                      p99_ms=round(percentile(lat, 99), 2), max_ms=round(lat[-1], 2))
        result["per_query_p95_ms"] = {
            scripts[i][0]: round(percentile(sorted(v), 95), 2) for i, v in per_script.items()}
    target = P95_TARGETS_MS.get(clients)
    if target is not None and lat:
        result["target_p95_ms"] = target
        result["meets_target"] = result["p95_ms"] <= target
    return result


# --- the benchmark -------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000, help="pfa_records rows")
    ap.add_argument("--clients", default="10,50,100", help="comma-separated client counts")
    ap.add_argument("--seconds", type=int, default=30, help="duration per level")
    ap.add_argument("--direct", action="store_true",
                    help="also run each level directly against PostgreSQL (no pooler)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args(argv)
    workdir = private_workdir("pgcutover-bench-pool-")
    cluster = ThrowawayCluster(workdir / "pg", settings={"max_connections": 150})
    out = {"records": a.records, "seconds": a.seconds, "results": [], "direct": []}
    try:
        cluster.start()
        t = time.time()
        loaded = load_sample(cluster.dsn, a.records, workdir)
        out["load_s"] = round(time.time() - t, 1)
        print(f"loaded {a.records} pfa_records in {out['load_s']} s", file=sys.stderr)
        port = free_port()
        r = run_playbook("pooling.yml", workdir,
                         pooler_vars(cluster, workdir, loaded["app_password"], port))
        if r.returncode != 0:
            print(r.stdout[-4000:], r.stderr[-2000:], file=sys.stderr)
            return 1
        for c in [int(x) for x in a.clients.split(",")]:
            res = run_pgbench("127.0.0.1", port, APP_USER, loaded["app_password"], APP_DB, c,
                              a.seconds, workdir / "pgbench")
            out["results"].append(res)
            print(json.dumps(res), file=sys.stderr)
            if a.direct:
                res = run_pgbench("127.0.0.1", cluster.port, APP_USER, loaded["app_password"],
                                  APP_DB, c, a.seconds, workdir / "pgbench")
                res["direct"] = True
                out["direct"].append(res)
                print(json.dumps(res), file=sys.stderr)
    finally:
        stop_pooler(workdir)
        cluster.destroy()
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("clients  tps      p50 ms   p95 ms   target   ok")
    for res in out["results"]:
        print("%-8d %-8s %-8s %-8s %-8s %s" % (
            res["clients"], res["tps"], res.get("p50_ms"), res.get("p95_ms"),
            res.get("target_p95_ms", "-"), res.get("meets_target", "-")))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r.get("meets_target", True) and r["rc"] == 0 for r in out["results"]) else 2


if __name__ == "__main__":
    sys.exit(main())
