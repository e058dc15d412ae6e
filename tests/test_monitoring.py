"""Roles pg_monitoring + pg_post_indexes and the health playbook on a real PostgreSQL 15
holding the sample data imported by pgcutover (own cluster: the role restarts it).

check mode, converge (pg_stat_statements preloaded -> restart, slow-query log, VACUUM
ANALYZE, the seed's indexes built concurrently with quoted identifiers), idempotence,
an INVALID index is dropped and rebuilt, the health report (summary + JSON), and the
health playbook failing only when asked.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_pool as bp  # noqa: E402


pytestmark = [pytest.mark.ansible, pytest.mark.pg]
SEED_INDEXES = {"idx_pfa_org_area_category", "idx_pfa_forecast_dates", "idx_pfa_pending_sync",
                "idx_ai_usage_recent", "idx_ai_cache_lookup"}
PLAYBOOK = """---
- name: Monitoring and post-import indexes (test)
  hosts: postgresql
  gather_facts: false
  roles:
    - role: pg_monitoring
    - role: pg_post_indexes
"""


@pytest.fixture(scope="module")
def monitored():
    with bp.throwaway_cluster("pgcutover-test-mon-") as (wd, cluster):
        bp.load_sample(cluster.dsn, 2000, wd, vacuum=False)  # the role must do it
        book = wd / "monitoring_and_indexes.yml"
        book.write_text(PLAYBOOK)
        v = {"pg_monitoring_login_port": cluster.port,
             "pg_monitoring_login_password": cluster.password,
             "pg_monitoring_database": bp.APP_DB,
             "pg_post_indexes_login_port": cluster.port,
             "pg_post_indexes_login_password": cluster.password,
             "pg_post_indexes_database": bp.APP_DB,
             "pg_restart_method": "pg_ctl",
             "pg_restart_data_dir": str(cluster.data),
             "pg_restart_log_file": str(cluster.base / "server.log"),
             "pg_monitoring_health_report_file": str(wd / "health.json")}
        runs = bp.converge_runs(str(book), wd, v)
        yield {"wd": wd, "cluster": cluster, "vars": v, "runs": runs, "book": str(book)}


def _query(m, sql, db=bp.APP_DB):
    with psycopg2.connect(m["cluster"].dsn_for(db)) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_converges_idempotent_and_check_mode_works(monitored):
    runs = monitored["runs"]
    assert runs["check"].returncode == 0, runs["check"].stdout[-3000:]
    assert runs["first"].returncode == 0, runs["first"].stdout[-4000:]
    assert runs["second"].returncode == 0, runs["second"].stdout[-3000:]
    assert bp.recap(runs["second"].stdout)["changed"] == 0, runs["second"].stdout[-4000:]
    assert "Restart or reload with pg_ctl" in runs["first"].stdout
    assert "Restart or reload with pg_ctl" not in runs["second"].stdout
    vacuum = runs["first"].stdout.split("vacuum | VACUUM ANALYZE them")[1].split("TASK [")[0]
    assert "changed: [pgtest]" in vacuum


def test_pg_stat_statements_and_slow_query_log(monitored):
    (spl, lmd), = _query(monitored, "SELECT current_setting('shared_preload_libraries'), "
                                    "current_setting('log_min_duration_statement')")
    assert "pg_stat_statements" in spl and lmd == "200ms"
    assert _query(monitored, "SELECT count(*) >= 0 FROM pg_stat_statements") == [(True,)]


def test_seed_indexes_are_valid_and_quoted_correctly(monitored):
    rows = dict(_query(monitored, "SELECT c.relname, pg_get_indexdef(i.indexrelid) "
                                  "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                  "WHERE i.indisvalid AND c.relname LIKE 'idx\\_%'"))
    assert set(rows) == SEED_INDEXES
    assert rows["idx_pfa_org_area_category"].endswith(
        'USING btree ("organizationId", "areaSilo", category) WHERE ("isDiscontinued" = false)')
    assert rows["idx_ai_cache_lookup"].endswith(
        'USING btree ("queryHash", "createdAt" DESC) WHERE (success = true)')
    assert "ARRAY['modified'::text, 'pending_sync'::text]" in rows["idx_pfa_pending_sync"]
    never = _query(monitored, "SELECT relname FROM pg_stat_user_tables WHERE schemaname = "
                              "'public' AND coalesce(last_analyze, last_autoanalyze) IS NULL")
    assert never == []


def test_invalid_index_is_dropped_and_rebuilt(monitored):
    conn = psycopg2.connect(monitored["cluster"].dsn_for(bp.APP_DB))
    conn.autocommit = True
    with conn.cursor() as cur:
        # What a failed CREATE INDEX CONCURRENTLY leaves behind.
        cur.execute("UPDATE pg_index SET indisvalid = false "
                    "WHERE indexrelid = 'idx_pfa_forecast_dates'::regclass")
        cur.execute("SELECT 'idx_pfa_forecast_dates'::regclass::oid")
        old_oid = cur.fetchone()[0]
    r = bp.run_playbook(monitored["book"], monitored["wd"], monitored["vars"])
    assert r.returncode == 0, r.stdout[-3000:]
    with conn.cursor() as cur:
        cur.execute("SELECT i.indexrelid, i.indisvalid FROM pg_index i "
                    "WHERE i.indexrelid = 'idx_pfa_forecast_dates'::regclass")
        new_oid, valid = cur.fetchone()
    conn.close()
    assert valid and new_oid != old_oid


def test_health_report_summary_and_json(monitored):
    # One target set impossibly low: reported as MISSED, but the play does not fail.
    queries = [dict(q, target_ms=0.0001) if q["name"] == "cost_aggregation" else q
               for q in bp.benchmark_queries()]
    v = dict(monitored["vars"], pg_monitoring_benchmark_queries=queries,
             pg_monitoring_health_query_runs=3)
    r = bp.run_playbook("health.yml", monitored["wd"], v)
    assert r.returncode == 0, r.stdout[-4000:]
    assert "cache hit ratio:" in r.stdout and "query load_all_pfa_records: median" in r.stdout
    assert "query cost_aggregation: median" in r.stdout and "MISSED" in r.stdout
    report = json.loads((monitored["wd"] / "health.json").read_text())
    assert 0 <= report["cache_hit_ratio"]["pct"] <= 100
    assert report["connections"]["max_connections"] > 0
    assert {q["name"] for q in report["benchmark_queries"]} == {
        "load_all_pfa_records", "filter_category_source", "date_range", "cost_aggregation"}
    assert all(q["runs"] == 3 and q["median_ms"] > 0 for q in report["benchmark_queries"])
    assert [m.split(" median")[0] for m in report["missed_targets"]] == ["cost_aggregation"]
    assert "long_transactions" in report and "bloat_estimate" in report
    unused = {i["index"] for i in report["unused_indexes"]}
    assert SEED_INDEXES & unused  # freshly built, never scanned yet
    assert report["slow_query_log"]["pg_stat_statements"] is True


def test_health_fails_when_asked(monitored):
    impossible = [{"name": "cost_aggregation", "target_ms": 0.0001, "sql":
                   'SELECT "category", count(*) FROM "pfa_records" '
                   'WHERE "organizationId" = %(org)s GROUP BY 1'}]
    v = dict(monitored["vars"], pg_monitoring_benchmark_queries=impossible,
             pg_monitoring_health_query_runs=1, pg_health_fail_on_targets=True)
    r = bp.run_playbook("health.yml", monitored["wd"], v)
    assert r.returncode != 0
    assert "health targets missed: cost_aggregation median" in r.stdout
