"""Import in existing schema mode: the schema `prisma migrate deploy` made on PostgreSQL."""
from __future__ import annotations

import pytest

from pgcutover.errors import SchemaMismatchError, TargetError
from pgcutover.importer import import_export, plan_import
from pgcutover.verify_target import verify_target

from targetlib import fingerprint, load_prisma_schema, make_sample_export, run_sql

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory):
    return make_sample_export(tmp_path_factory.mktemp("exist"), pfa_records=2000)


@pytest.fixture
def prisma_db(pg_db):
    load_prisma_schema(pg_db)
    return pg_db


def _structure(dsn):
    fp = fingerprint(dsn)
    return {k: fp[k] for k in ("relations", "columns", "constraints", "indexes")}


def test_existing_mode_loads_and_restores_the_apps_schema(sample_export, prisma_db):
    before = _structure(prisma_db)
    lines = []
    result = import_export(sample_export, prisma_db, schema_mode="existing",
                           progress=lines.append)
    assert result["changed"] is True
    assert result["skipped_tables"] == ["_prisma_migrations"]
    after = _structure(prisma_db)
    # the app's indexes and constraints were dropped for the load and rebuilt identically
    # (names and definitions), validated; only the control schema is new
    assert [i for i in after["indexes"] if i[0] == "public"] == before["indexes"]
    assert [c for c in after["constraints"] if not c[0].startswith("pgcutover.")] == \
        before["constraints"]
    assert all(c[3] for c in after["constraints"])
    # the target's own migration history is untouched
    assert run_sql(prisma_db, "SELECT migration_name FROM _prisma_migrations",
                   fetch=True) == [("0_init",)]
    report = verify_target(sample_export, prisma_db)
    assert report["ok"]
    assert report["skipped_tables"] == ["_prisma_migrations"]
    # Prisma's users_email_key is case-sensitive where SQLite had COLLATE NOCASE: a warning
    assert any("NOCASE" in w and w.startswith("users:") for w in report["warnings"])
    # the second run is a no-op
    assert import_export(sample_export, prisma_db, schema_mode="existing")["changed"] is False
    # SERIAL sequences above SQLite's high-water mark
    assert run_sql(prisma_db, """INSERT INTO sync_logs ("organizationId", "syncType", status)
                                 VALUES ('o', 'full', 'ok') RETURNING id""", fetch=True) == [(2,)]


def test_existing_mode_types_convert_exactly(sample_export, prisma_db):
    import_export(sample_export, prisma_db, schema_mode="existing")
    rows = run_sql(prisma_db, """SELECT "inputCostPer1k"::text, pg_typeof("inputCostPer1k")::text
                                 FROM ai_providers ORDER BY name""", fetch=True)
    assert all(t == "numeric" for _, t in rows)
    assert all(len(v.split(".")[1]) == 30 for v, _ in rows)  # decimal(65,30), exact value


def test_existing_mode_refuses_nonempty_then_replaces(sample_export, prisma_db):
    import_export(sample_export, prisma_db, schema_mode="existing")
    run_sql(prisma_db, "DELETE FROM pgcutover.owned_tables; DELETE FROM pgcutover.imports")
    with pytest.raises(TargetError, match="already hold rows"):
        import_export(sample_export, prisma_db, schema_mode="existing")
    r = import_export(sample_export, prisma_db, schema_mode="existing", replace=True)
    assert r["changed"]
    verify_target(sample_export, prisma_db)


def test_compat_check_lists_every_problem(sample_export, prisma_db):
    run_sql(prisma_db, """
        ALTER TABLE pfa_records DROP COLUMN "dor";
        ALTER TABLE pfa_records ALTER COLUMN "monthlyRate" TYPE real;
        ALTER TABLE ai_providers ALTER COLUMN "inputCostPer1k" TYPE double precision;
        ALTER TABLE users ADD COLUMN "tenantId" text NOT NULL;
        ALTER TABLE users ADD COLUMN "nickname" text NOT NULL DEFAULT '';
        ALTER TABLE users ALTER COLUMN "email" SET NOT NULL;
        ALTER TABLE organizations ALTER COLUMN "createdAt" TYPE timestamp(0);
        DROP TABLE sync_logs;""")
    before = fingerprint(prisma_db)
    with pytest.raises(SchemaMismatchError) as ei:
        import_export(sample_export, prisma_db, schema_mode="existing")
    got = {(d["table"], d.get("column")): d["problem"] for d in ei.value.details}
    assert "missing column" in got[("pfa_records", "dor")]
    assert "float4" in got[("pfa_records", "monthlyRate")]
    assert "round" in got[("ai_providers", "inputCostPer1k")]
    assert "NOT NULL without default" in got[("users", "tenantId")]
    assert "NULLs" in got[("users", "email")]
    assert "milliseconds" in got[("organizations", "createdAt")]
    assert got[("sync_logs", None)] == "missing table"
    assert ("users", "nickname") not in got
    assert len(got) == 7
    assert fingerprint(prisma_db) == before
    with pytest.raises(SchemaMismatchError):   # check mode reports the same, read-only
        plan_import(sample_export, prisma_db, schema_mode="existing")


def test_plan_existing_lists_drop_and_recreate(sample_export, prisma_db):
    before = fingerprint(prisma_db)
    plan = plan_import(sample_export, prisma_db, schema_mode="existing")
    q = plan["executed_queries"]
    assert any(s.startswith('DROP INDEX "public"."pfa_records_organizationId_pfaId_key"') for s in q)
    assert any("CREATE UNIQUE INDEX" in s and "pfa_records_organizationId_pfaId_key" in s for s in q)
    assert plan["compat"]["target_types"]["pfa_records"]["purchasePrice"] == "numeric(65,30)"
    assert fingerprint(prisma_db) == before
