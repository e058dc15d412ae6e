"""The run record of the cutover runbook (roles/cutover_state action plugin): ordering
guard, new/completed/abandoned runs, check-mode scratch record, summary arithmetic."""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

pytest.importorskip("ansible")
from ansible.errors import AnsibleActionFail  # noqa: E402

PLUGIN = Path(__file__).resolve().parents[1] / "roles/cutover_state/action_plugins/cutover_state.py"
spec = importlib.util.spec_from_file_location("cutover_state_plugin", PLUGIN)
cs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cs)

PHASES = ["a", "b", "c"]


def act(state_dir, action, check=False, **kw):
    p = {k: v["default"] if "default" in v else None for k, v in cs.ARGSPEC.items()}
    p.update(state_dir=str(state_dir), action=action, phases=PHASES, **kw)
    try:
        return cs.run_action(p, check)
    except cs._Done as done:
        return done.args[0]


def test_phases_run_in_order_only(tmp_path):
    with pytest.raises(AnsibleActionFail, match="no run in progress"):
        act(tmp_path, "begin", phase="b")
    run = act(tmp_path, "begin", phase="a")["run"]
    assert run["status"] == "in_progress" and run["phases"]["a"]["status"] == "running"
    with pytest.raises(AnsibleActionFail, match="earlier phase.*not done.*a"):
        act(tmp_path, "begin", phase="b")
    act(tmp_path, "end", phase="a")
    with pytest.raises(AnsibleActionFail, match="earlier phase.*b"):
        act(tmp_path, "begin", phase="c")
    act(tmp_path, "begin", phase="b")
    act(tmp_path, "end", phase="b")
    again = act(tmp_path, "begin", phase="b")
    assert again["skip"] and not again["changed"] and "already done" in again["msg"]
    assert act(tmp_path, "begin", phase="b", rerun=True)["run"]["phases"]["b"]["attempts"] == 2


def test_completed_run_is_never_redone(tmp_path):
    for ph in PHASES:
        act(tmp_path, "begin", phase=ph)
        act(tmp_path, "end", phase=ph)
    rid = (tmp_path / "current").read_text().strip()
    first = json.loads((tmp_path / "runs" / f"{rid}.json").read_text())
    assert first["status"] == "completed"
    again = act(tmp_path, "begin", phase="a")
    assert again["skip"] and not again["changed"] and again["run"]["run_id"] == first["run_id"]
    assert act(tmp_path, "begin", phase="c")["skip"]
    new = act(tmp_path, "begin", phase="a", new_run=True)["run"]
    assert new["run_id"] != first["run_id"] and new["status"] == "in_progress"


def test_unfinished_run_is_resumed_or_abandoned_with_new_run(tmp_path):
    act(tmp_path, "begin", phase="a")
    act(tmp_path, "end", phase="a")
    act(tmp_path, "begin", phase="b")
    act(tmp_path, "fail", phase="b", error="boom")
    # Running the whole runbook again resumes: a is skipped, b may be retried.
    again = act(tmp_path, "begin", phase="a")
    rid = again["run"]["run_id"]
    assert again["skip"] and "already done" in again["msg"]
    assert act(tmp_path, "begin", phase="b")["run"]["phases"]["b"]["attempts"] == 2
    act(tmp_path, "end", phase="b")
    new = act(tmp_path, "begin", phase="a", new_run=True)["run"]
    assert new["run_id"] != rid and new["phases"]["a"]["status"] == "running"
    old = json.loads((tmp_path / "runs" / f"{rid}.json").read_text())
    assert old["status"] == "abandoned"


def test_check_mode_never_touches_the_real_record(tmp_path):
    for ph in PHASES:
        act(tmp_path, "begin", phase=ph, check=True)
        act(tmp_path, "end", phase=ph, check=True)
    assert not (tmp_path / "current").exists()
    assert (tmp_path / "check-mode" / "current").exists()
    # The real run then starts from scratch.
    assert act(tmp_path, "begin", phase="a")["run"]["phases"]["a"]["attempts"] == 1


def test_summary_downtime_and_digests(tmp_path):
    act(tmp_path, "begin", phase="a")
    act(tmp_path, "mark", marks=["app_stop_started"])
    time.sleep(0.05)
    act(tmp_path, "end", phase="a", marks=["app_healthy"], data={"verify_target": {
        "users": {"rows": 7, "expected_rows": 7, "content_digest": "v2:7:x", "expected_digest": "v2:7:x"},
        "orgs": {"rows": 27, "expected_rows": 28, "content_digest": "v2:27:y", "expected_digest": "v2:28:z"}}})
    out = act(tmp_path, "summary")
    s = out["summary"]
    assert 0.05 <= s["downtime_s"] < 5
    assert s["digests_matched"] == "1/2" and not s["all_digests_matched"]
    assert s["tables"]["orgs"]["digest_matched"] is False and s["rows_total"] == 35
    assert json.loads(Path(out["summary_path"]).read_text()) == s
    assert [p["phase"] for p in s["phases"]] == ["a"]


def test_rollback_marks_the_run(tmp_path):
    act(tmp_path, "begin", phase="a")
    act(tmp_path, "fail", phase="a", error="boom")
    act(tmp_path, "rollback_begin", phase="a")
    run = act(tmp_path, "rollback_end", status="rolled_back")["run"]
    assert run["status"] == "rolled_back" and run["phases"]["a"]["status"] == "failed"
    assert run["rollbacks"][0]["trigger"] == "a"
    # After a rollback, the first phase starts a new run.
    assert act(tmp_path, "begin", phase="a")["run"]["run_id"] != run["run_id"]
