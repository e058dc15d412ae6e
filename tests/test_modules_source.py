"""pgcutover_analyze, pgcutover_export, pgcutover_verify (export/source) through
ansible-playbook, as Ansible runs them (AnsibleModule, module_utils, check mode)."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from pgcutover import sample

from ansible_tasks import run_tasks, task

pytestmark = pytest.mark.ansible
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path):
    p = tmp_path / "app.db"
    sample.generate(p, pfa_records=200)
    return p


def test_analyze_export_verify_check_run_rerun(db, tmp_path):
    out = tmp_path / "export"
    report = tmp_path / "analysis.json"
    src_before = hashlib.sha256(db.read_bytes()).hexdigest()
    results, raw = run_tasks(tmp_path, [
        task("pgcutover_analyze", {"sqlite_path": str(db), "dest": str(report)}, check=True),
        task("pgcutover_analyze", {"sqlite_path": str(db), "dest": str(report)}),
        task("pgcutover_analyze", {"sqlite_path": str(db), "dest": str(report)}),
        task("pgcutover_export", {"sqlite_path": str(db), "export_dir": str(out)}, check=True),
        task("pgcutover_export", {"sqlite_path": str(db), "export_dir": str(out)}),
        task("pgcutover_export", {"sqlite_path": str(db), "export_dir": str(out)}),
        task("pgcutover_verify", {"mode": "export", "export_dir": str(out)}),
        task("pgcutover_verify", {"mode": "source", "export_dir": str(out),
                                  "sqlite_path": str(db)}),
    ])
    an_check, an, an_again, ex_check, ex, ex_again, v_exp, v_src = results
    assert not an_check.get("failed") and an_check["changed"] is True, an_check
    assert an["changed"] is True and an_again["changed"] is False
    assert an["tables"]["pfa_records"]["rows"] == 200 and an["ok"] is True
    assert json.loads(report.read_text())["total_rows"] == 271
    assert oct(report.stat().st_mode & 0o777) == "0o600"
    assert ex_check["changed"] is True and ex_check["would_write"]["users"]["rows"] == 7
    assert ex["changed"] is True and ex["tables"]["users"]["rows"] == 7, ex
    assert ex["diff"]["after"]["users"].startswith("7 rows, v2:7:")
    assert ex_again["changed"] is False
    assert ex_again["manifest_digest"] == ex["manifest_digest"]
    assert v_exp["ok"] is True and v_exp["changed"] is False
    assert v_src["ok"] is True
    assert hashlib.sha256(db.read_bytes()).hexdigest() == src_before


def test_failures_carry_typed_errors(db, tmp_path):
    out = tmp_path / "export"
    results, _ = run_tasks(tmp_path, [
        task("pgcutover_export", {"sqlite_path": str(db), "export_dir": str(out)})])
    assert results[0]["changed"]
    (out / "stray").write_text("x")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE users SET firstName = 'X' WHERE username = 'admin'")
    conn.execute("UPDATE users SET isActive = 2 WHERE username = 'jdoe'")
    conn.commit()
    conn.close()
    results, _ = run_tasks(tmp_path, [
        task("pgcutover_verify", {"mode": "export", "export_dir": str(out)}),
        task("pgcutover_verify", {"mode": "source", "export_dir": str(out),
                                  "sqlite_path": str(db)}),
        task("pgcutover_analyze", {"sqlite_path": str(db)}),
        task("pgcutover_export", {"sqlite_path": str(db), "export_dir": str(tmp_path / "e2")}),
        task("pgcutover_export", {"sqlite_path": str(db), "export_dir": str(out)}),
    ])
    v_exp, v_src, an, ex, ex_dirty = results
    assert v_exp["failed"] and v_exp["error"]["code"] == "export_mismatch"
    assert {"file": "stray", "table": None, "problem": "extra"} in v_exp["error"]["details"]
    assert v_src["failed"] and v_src["error"]["details"][0]["table"] == "users"
    assert an["failed"] and an["error"]["code"] == "blocker"
    assert an["error"]["column"] == "isActive"
    assert ex["failed"] and ex["error"]["code"] == "blocker"
    assert ex["error"]["table"] == "users" and ex["error"]["column"] == "isActive"
    assert not (tmp_path / "e2").exists()
    assert ex_dirty["failed"] and ex_dirty["error"]["code"] == "usage"
