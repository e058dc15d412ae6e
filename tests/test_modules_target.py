"""pgcutover_import and pgcutover_verify (mode: target) through ansible-playbook."""
from __future__ import annotations


import pytest

from ansible_tasks import run_tasks, task
from targetlib import REPO, fingerprint, load_prisma_schema, make_sample_export

pytestmark = [pytest.mark.pg, pytest.mark.ansible]
HAS_VERIFY_MODULE = (REPO / "library" / "pgcutover_verify.py").exists()


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory):
    return make_sample_export(tmp_path_factory.mktemp("mod"), pfa_records=300)


def test_import_module_check_run_rerun(sample_export, pg_db, pg_cluster, tmp_path):
    # password through the module's no_log login_password, not the DSN's passfile
    dsn = pg_db.split(" passfile=")[0]
    args = {"export_dir": str(sample_export), "dsn": dsn,
            "login_password": pg_cluster.password}
    before = fingerprint(pg_db)
    results, raw = run_tasks(tmp_path, [task("pgcutover_import", args, check=True)])
    plan = results[0]
    assert plan["changed"] is True and not plan.get("failed"), plan
    assert any(q.startswith('CREATE TABLE "public"."users"') for q in plan["executed_queries"])
    assert fingerprint(pg_db) == before          # check mode changed nothing
    results, raw2 = run_tasks(tmp_path, [task("pgcutover_import", args),
                                         task("pgcutover_import", args),
                                         task("pgcutover_import", dict(args, schema_mode="existing",
                                                                       target_schema="other"))])
    done, rerun, bad = results
    assert done["changed"] is True and done["tables"]["pfa_records"]["rows"] == 300
    assert done["diff"]["after"]["users"].startswith("7 rows, v2:7:")
    assert rerun["changed"] is False
    assert bad["failed"] and bad["error"]["code"] == "schema_mismatch"
    assert {"table": "users", "problem": "missing table"} in bad["error"]["details"]
    assert pg_cluster.password not in raw + raw2


@pytest.mark.skipif(not HAS_VERIFY_MODULE, reason="library/pgcutover_verify.py not there yet")
def test_verify_module_mode_target(sample_export, pg_db, tmp_path):
    load_prisma_schema(pg_db)
    verify = {"mode": "target", "export_dir": str(sample_export), "dsn": pg_db}
    results, _ = run_tasks(tmp_path, [
        task("pgcutover_verify", verify),
        task("pgcutover_import", {"export_dir": str(sample_export), "dsn": pg_db,
                                  "schema_mode": "existing"}),
        task("pgcutover_verify", verify)])
    before, imported, after = results
    assert before["failed"] and before["error"]["code"] == "target_mismatch"
    assert imported["changed"] and imported["skipped_tables"] == ["_prisma_migrations"]
    assert not after.get("failed") and after["ok"] is True, after.get("msg")
