#!/usr/bin/python
# -*- coding: utf-8 -*-
"""State record of a cutover run, kept on the control node (role-local module)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cutover_state
short_description: Record of one cutover run (phases, timings, marks, data) with an ordering guard
description:
  - Keeps one JSON file per run in I(state_dir)/runs and a pointer to the current run in
    I(state_dir)/current. Every write goes to a temporary file then is renamed.
  - C(begin) refuses a phase whose predecessors are not done in the current run, or that
    is already done (unless I(rerun)). The first phase starts a new run.
  - C(summary) computes per-phase durations, the downtime window (mark C(app_stop_started)
    to mark C(app_healthy)), rows and digests per table, and writes it as JSON.
options:
  state_dir: {description: Directory of the state records (created 0700)., type: path, required: true}
  action:
    description: What to do.
    type: str
    required: true
    choices: [begin, end, fail, mark, update, get, summary, rollback_begin, rollback_end, abandon]
  phases: {description: Phase ids in run order., type: list, elements: str, default: []}
  phase: {description: Phase id for begin/end/fail/mark., type: str}
  run_id: {description: Id for a new run (begin of the first phase); default UTC timestamp., type: str}
  new_run: {description: Let the first phase abandon an unfinished run., type: bool, default: false}
  rerun: {description: Let C(begin) run a phase that is already done., type: bool, default: false}
  data: {description: Merged (one level deep) into the run's data., type: dict, default: {}}
  marks: {description: Names stamped with the current time., type: list, elements: str, default: []}
  error: {description: Failure text for C(fail)/C(rollback_end)., type: str}
  status: {description: Result of the rollback for C(rollback_end)., type: str, choices: [rolled_back, refused, failed]}
  summary_path: {description: Where C(summary) writes its JSON (default next to the run record)., type: path}
'''

EXAMPLES = r'''
- name: state | Begin phase
  cutover_state:
    state_dir: /var/lib/pgcutover/state
    action: begin
    phase: t_minus_15_stop_switch
    phases: [t_minus_60_preflight, t_minus_30_backup_export, t_minus_15_stop_switch]
'''

RETURN = r'''
run: {description: The current run record after the action., returned: always, type: dict}
summary: {description: The computed summary (action summary)., returned: when action is summary, type: dict}
summary_path: {description: Path of the summary JSON., returned: when action is summary, type: str}
'''

import fcntl
import json
import os
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

DOWNTIME_START, DOWNTIME_END = "app_stop_started", "app_healthy"
MAINT_START, MAINT_END = "maintenance_on", "maintenance_off"


def _now():
    t = time.time()
    iso = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")
    return t, iso.replace("+00:00", "Z")


def _write_json(path, obj):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Store:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.runs = os.path.join(state_dir, "runs")
        for d in (state_dir, self.runs):
            if not os.path.isdir(d):
                os.makedirs(d, 0o700)
        self.pointer = os.path.join(state_dir, "current")

    def path(self, run_id):
        return os.path.join(self.runs, run_id + ".json")

    def current(self):
        try:
            with open(self.pointer) as f:
                run_id = f.read().strip()
        except FileNotFoundError:
            return None
        try:
            with open(self.path(run_id)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def save(self, run, make_current=False):
        _write_json(self.path(run["run_id"]), run)
        if make_current:
            tmp = self.pointer + ".tmp"
            with open(tmp, "w") as f:
                f.write(run["run_id"] + "\n")
            os.replace(tmp, self.pointer)


def _merge(run, data):
    for key, value in (data or {}).items():
        if isinstance(value, dict) and isinstance(run["data"].get(key), dict):
            run["data"][key].update(value)
        else:
            run["data"][key] = value


def _done(run, phase):
    return run["phases"].get(phase, {}).get("status") == "done"


def begin(module, store, run):
    p = module.params
    phases, phase = p["phases"], p["phase"]
    if phase not in phases:
        module.fail_json(msg="unknown phase %s (known: %s)" % (phase, ", ".join(phases)))
    idx = phases.index(phase)
    if run is not None and run["status"] == "completed" and not (idx == 0 and p["new_run"]):
        # A finished cutover is never redone by re-running the playbooks: the SQLite file
        # is stale once the app writes to PostgreSQL.
        module.exit_json(changed=False, skip=True, run=run,
                         msg="run %s completed at %s: nothing to do (cutover_state_new_run=true "
                             "starts a new run)" % (run["run_id"], run.get("completed_at")))
    active = run is not None and run["status"] == "in_progress"
    if idx == 0:
        later_done = active and any(_done(run, q) for q in phases[1:])
        if later_done and not p["new_run"]:
            module.fail_json(
                msg="run %s is unfinished (done: %s); finish it, run playbooks/rollback.yml, "
                    "or set cutover_state_new_run=true to abandon it"
                    % (run["run_id"], ", ".join(q for q in phases if _done(run, q))))
        if not active or later_done:
            if active:
                run["status"] = "abandoned"
                store.save(run)
            t, iso = _now()
            run = {"run_id": p["run_id"] or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t)),
                   "status": "in_progress", "created_at": iso, "phase_order": phases,
                   "phases": {}, "marks": {}, "data": {}, "rollbacks": []}
            if os.path.exists(store.path(run["run_id"])):
                module.fail_json(msg="run id %s already exists" % run["run_id"])
    else:
        if not active:
            module.fail_json(
                msg="no run in progress (last: %s, %s): start with the first phase %s"
                    % (run and run["run_id"], run and run["status"], phases[0]))
        missing = [q for q in phases[:idx] if not _done(run, q)]
        if missing:
            module.fail_json(msg="phase %s refused: earlier phase(s) not done in run %s: %s"
                             % (phase, run["run_id"], ", ".join(missing)))
    if _done(run, phase) and not p["rerun"]:
        module.fail_json(msg="phase %s already done in run %s at %s (set cutover_state_rerun="
                             "true to run it again)"
                             % (phase, run["run_id"], run["phases"][phase]["ended_at"]))
    t, iso = _now()
    run["phases"][phase] = {"status": "running", "started_at": iso, "started_epoch": t,
                            "attempts": run["phases"].get(phase, {}).get("attempts", 0) + 1}
    return run, True


def end(module, store, run, failed=False):
    p = module.params
    phase = p["phase"]
    rec = run["phases"].get(phase)
    if not rec or rec["status"] != "running":
        module.fail_json(msg="phase %s is not running in run %s" % (phase, run["run_id"]))
    t, iso = _now()
    rec.update(status="failed" if failed else "done", ended_at=iso, ended_epoch=t,
               duration_s=round(t - rec["started_epoch"], 3))
    if failed:
        rec["error"] = p["error"] or "failed"
    elif p["phases"] and phase == p["phases"][-1]:
        run["status"] = "completed"
        run["completed_at"] = iso
    return run, True


def _tables(data):
    """Rows and digests per table: manifest (expected) vs PostgreSQL, from the verify-target
    report the T-10 phase stores as data.verify_target ({table: {rows, expected_rows,
    content_digest, expected_digest, ok}})."""
    out = {}
    for name, e in (data.get("verify_target") or {}).items():
        out[name] = {"rows": e.get("expected_rows"), "target_rows": e.get("rows"),
                     "source_digest": e.get("expected_digest"),
                     "target_digest": e.get("content_digest")}
        out[name]["digest_matched"] = (e.get("rows") == e.get("expected_rows")
                                       and e.get("content_digest") is not None
                                       and e.get("content_digest") == e.get("expected_digest"))
    return out


def summary(run):
    phases = []
    for q in run.get("phase_order", []):
        rec = run["phases"].get(q)
        if rec:
            phases.append({"phase": q, "status": rec["status"],
                           "started_at": rec.get("started_at"), "ended_at": rec.get("ended_at"),
                           "duration_s": rec.get("duration_s")})
    starts = [r["started_epoch"] for r in run["phases"].values() if "started_epoch" in r]
    ends = [r["ended_epoch"] for r in run["phases"].values() if "ended_epoch" in r]
    marks = run.get("marks", {})

    def window(a, b):
        if a in marks and b in marks and marks[b]["epoch"] >= marks[a]["epoch"]:
            return round(marks[b]["epoch"] - marks[a]["epoch"], 3)
        return None

    tables = _tables(run.get("data", {}))
    return {
        "run_id": run["run_id"], "status": run["status"],
        "total_s": round(max(ends) - min(starts), 3) if starts and ends else None,
        "phases": phases,
        "downtime_s": window(DOWNTIME_START, DOWNTIME_END),
        "downtime_window": {"from": marks.get(DOWNTIME_START, {}).get("at"),
                            "to": marks.get(DOWNTIME_END, {}).get("at")},
        "maintenance_s": window(MAINT_START, MAINT_END),
        "tables": tables,
        "rows_total": sum(t["rows"] or 0 for t in tables.values()),
        "digests_matched": "%d/%d" % (sum(1 for t in tables.values() if t["digest_matched"]),
                                      len(tables)),
        "all_digests_matched": bool(tables) and all(t["digest_matched"] for t in tables.values()),
        "reexported": run.get("data", {}).get("reexported", False),
        "rollbacks": [{k: r.get(k) for k in ("status", "started_at", "ended_at", "duration_s",
                                             "trigger", "error")}
                      for r in run.get("rollbacks", [])],
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path", required=True),
            action=dict(type="str", required=True,
                        choices=["begin", "end", "fail", "mark", "update", "get", "summary",
                                 "rollback_begin", "rollback_end", "abandon"]),
            phases=dict(type="list", elements="str", default=[]),
            phase=dict(type="str"),
            run_id=dict(type="str"),
            new_run=dict(type="bool", default=False),
            rerun=dict(type="bool", default=False),
            data=dict(type="dict", default={}),
            marks=dict(type="list", elements="str", default=[]),
            error=dict(type="str"),
            status=dict(type="str", choices=["rolled_back", "refused", "failed"]),
            summary_path=dict(type="path"),
        ),
        required_if=[("action", "begin", ["phase", "phases"]), ("action", "end", ["phase"]),
                     ("action", "fail", ["phase"]), ("action", "rollback_end", ["status"])],
        supports_check_mode=True,
    )
    p = module.params
    action = p["action"]
    real = Store(p["state_dir"])
    # Check mode keeps a scratch record (state_dir/check-mode) so a dry run of the whole
    # runbook passes the ordering guard without touching the real record.
    store = Store(os.path.join(p["state_dir"], "check-mode")) if module.check_mode else real
    with open(os.path.join(real.dir, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run = store.current()
        first = action == "begin" and p["phases"] and p["phase"] == p["phases"][0]
        if module.check_mode and (first or run is None):
            run = real.current()
        if action == "begin":
            run, changed = begin(module, store, run)
            store.save(run, make_current=True)
            module.exit_json(changed=changed, run=run)
        if run is None:
            module.fail_json(msg="no cutover run recorded in %s" % store.dir)
        result = {}
        if action in ("end", "fail"):
            run, _ = end(module, store, run, failed=action == "fail")
        elif action == "abandon":
            if run["status"] == "in_progress":
                run["status"] = "abandoned"
        elif action == "rollback_begin":
            t, iso = _now()
            run["rollbacks"].append({"status": "running", "started_at": iso, "started_epoch": t,
                                     "trigger": p["phase"] or "manual"})
        elif action == "rollback_end":
            if not run["rollbacks"] or run["rollbacks"][-1]["status"] != "running":
                module.fail_json(msg="no rollback running in run %s" % run["run_id"])
            t, iso = _now()
            rb = run["rollbacks"][-1]
            rb.update(status=p["status"], ended_at=iso, ended_epoch=t,
                      duration_s=round(t - rb["started_epoch"], 3), error=p["error"])
            if p["status"] == "rolled_back":
                run["status"] = "rolled_back"
        t, iso = _now()
        for name in p["marks"]:
            run["marks"][name] = {"at": iso, "epoch": t, "phase": p["phase"]}
        _merge(run, p["data"])
        if action == "summary":
            result["summary"] = summary(run)
            path = p["summary_path"] or store.path(run["run_id"]).replace(".json", ".summary.json")
            _write_json(path, result["summary"])
            result["summary_path"] = path
        changed = action not in ("get", "summary")
        if action != "get":
            store.save(run)
        module.exit_json(changed=changed, run=run, **result)


if __name__ == "__main__":
    main()
