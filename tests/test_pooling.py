"""Role pgbouncer against a real PostgreSQL 15 and a real PgBouncer 1.18 (daemon mode).

check mode, converge, idempotence (changed=0), SCRAM login through the pooler in
transaction mode, wrong password refused, admin console restricted, auth_file holds
SCRAM secrets only (0600), app env file, a short pgbench through the pooler.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_pool as bp  # noqa: E402

from pgcutover.throwaway_cluster import free_port  # noqa: E402

pytestmark = [pytest.mark.ansible, pytest.mark.pg]
ADMIN = "pgb_admin"


@pytest.fixture(scope="module")
def pooled():
    """A cluster with the sample PFA data, PgBouncer configured by playbooks/pooling.yml."""
    with bp.throwaway_cluster("pgcutover-test-pool-") as (wd, cluster):
        loaded = bp.load_sample(cluster.dsn, 2000, wd)
        admin_pw = "adm-" + os.urandom(8).hex()
        conn = psycopg2.connect(cluster.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {ADMIN} LOGIN PASSWORD %s", (admin_pw,))
        conn.close()
        port = free_port()
        v = bp.pooler_vars(cluster, wd, loaded["app_password"], port,
                           pgbouncer_admin_users=[ADMIN], pgbouncer_default_pool_size=5)
        runs = bp.converge_runs("pooling.yml", wd, v)
        yield {"wd": wd, "cluster": cluster, "port": port, "vars": v, "runs": runs,
               "app_password": loaded["app_password"], "admin_password": admin_pw}


def _pooler_conn(p, user=bp.APP_USER, password=None, dbname=bp.APP_DB):
    return psycopg2.connect(host="127.0.0.1", port=p["port"], user=user, dbname=dbname,
                            password=password or p["app_password"], connect_timeout=5)


def test_converges_idempotent_and_check_mode_works(pooled):
    runs = pooled["runs"]
    assert runs["check"].returncode == 0, runs["check"].stdout[-3000:]
    assert runs["first"].returncode == 0, runs["first"].stdout[-3000:]
    assert bp.recap(runs["first"].stdout)["changed"] > 0
    assert runs["second"].returncode == 0, runs["second"].stdout[-3000:]
    assert bp.recap(runs["second"].stdout)["changed"] == 0, runs["second"].stdout[-3000:]
    for r in runs.values():  # no secret ever reaches the output
        assert pooled["app_password"] not in r.stdout + r.stderr
        assert pooled["cluster"].password not in r.stdout + r.stderr
        assert "SCRAM-SHA-256$" not in r.stdout + r.stderr


def test_serves_queries_in_transaction_mode_with_scram(pooled):
    with _pooler_conn(pooled) as conn, conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM "pfa_records"')
        assert cur.fetchone()[0] == 2000
        cur.execute("SELECT current_user, inet_server_port()")
        user, server_port = cur.fetchone()
        assert user == bp.APP_USER and server_port == pooled["cluster"].port
    conn.close()
    admin = _pooler_conn(pooled, user=ADMIN, password=pooled["admin_password"],
                         dbname="pgbouncer")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SHOW POOLS")
        cols = [d[0] for d in cur.description]
        pools = [dict(zip(cols, r)) for r in cur.fetchall()]
        cur.execute("SHOW CONFIG")
        config = {r[0]: r[1] for r in cur.fetchall()}
    admin.close()
    app_pool = [p for p in pools if p["database"] == bp.APP_DB]
    assert app_pool and app_pool[0]["pool_mode"] == "transaction"
    assert config["auth_type"] == "scram-sha-256"
    assert config["listen_addr"] == "127.0.0.1"
    assert config["unix_socket_dir"] == ""


def test_refuses_wrong_password_and_non_admin_console(pooled):
    with pytest.raises(psycopg2.OperationalError, match="authentication failed"):
        _pooler_conn(pooled, password="not-the-password")
    with pytest.raises(psycopg2.OperationalError, match="not allowed"):
        _pooler_conn(pooled, dbname="pgbouncer")


def test_auth_file_has_scram_secrets_only(pooled):
    auth = pooled["wd"] / "pgbouncer" / "etc" / "userlist.txt"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    lines = auth.read_text().strip().splitlines()
    names = sorted(line.split()[0].strip('"') for line in lines)
    assert names == sorted([bp.APP_USER, ADMIN])
    assert all(line.split()[1].startswith('"SCRAM-SHA-256$4096:') for line in lines)
    assert pooled["app_password"] not in auth.read_text()


def test_app_env_file_has_pooled_and_direct_urls(pooled):
    env = pooled["wd"] / "app-database.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    urls = dict(line.split("=", 1) for line in env.read_text().splitlines()
                if line and not line.startswith("#"))
    pooled_url, direct_url = urls["DATABASE_URL"].strip('"'), urls["DIRECT_DATABASE_URL"].strip('"')
    assert f":{pooled['port']}/{bp.APP_DB}?" in pooled_url and "pgbouncer=true" in pooled_url
    assert f":{pooled['cluster'].port}/{bp.APP_DB}?" in direct_url
    assert "pgbouncer=true" not in direct_url


def test_short_pgbench_through_the_pooler(pooled):
    res = bp.run_pgbench("127.0.0.1", pooled["port"], bp.APP_USER, pooled["app_password"],
                         bp.APP_DB, clients=10, seconds=3, outdir=pooled["wd"] / "pgbench")
    assert res["rc"] == 0, res["pgbench_stderr_tail"]
    assert res["failed"] == 0
    assert res["transactions"] > 0
    assert set(res["per_query_p95_ms"]) == {q["name"] for q in bp.benchmark_queries()}
    assert 0 < res["p50_ms"] <= res["p95_ms"] <= res["max_ms"]


def test_role_refuses_a_role_without_scram_secret(pooled):
    conn = psycopg2.connect(pooled["cluster"].dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET password_encryption = 'md5'")
        cur.execute("CREATE ROLE legacy_md5 LOGIN PASSWORD 'x-legacy-pw'")
    conn.close()
    v = dict(pooled["vars"], pgbouncer_auth_users=[bp.APP_USER, "legacy_md5"])
    r = bp.run_playbook("pooling.yml", pooled["wd"], v)
    assert r.returncode != 0
    assert "roles without a SCRAM-SHA-256 password" in r.stdout and "legacy_md5" in r.stdout
    auth = (pooled["wd"] / "pgbouncer" / "etc" / "userlist.txt").read_text()
    assert "legacy_md5" not in auth  # the auth_file was not touched


def test_config_change_restarts_the_daemon(pooled):
    pid_file = pooled["wd"] / "pgbouncer" / "run" / "pgbouncer.pid"
    old_pid = pid_file.read_text().strip()
    v = dict(pooled["vars"], pgbouncer_default_pool_size=6)
    r = bp.run_playbook("pooling.yml", pooled["wd"], v)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Stop pgbouncer daemon (safe shutdown)" in r.stdout
    assert pid_file.read_text().strip() != old_pid
    admin = _pooler_conn(pooled, user=ADMIN, password=pooled["admin_password"],
                         dbname="pgbouncer")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SHOW CONFIG")
        config = {row[0]: row[1] for row in cur.fetchall()}
    admin.close()
    assert config["default_pool_size"] == "6"
