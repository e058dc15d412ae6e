# -*- coding: utf-8 -*-
"""cutover_state: the record of one cutover run, on the control node (action plugin).

Documentation: library/cutover_state.py. One JSON file per run in state_dir/runs, a
pointer state_dir/current, writes via temp file + fsync + rename under an flock.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import time
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

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


def begin(p, store, run):
    phases, phase = p["phases"], p["phase"]
    if not p["go"]:
        _fail("No-go: %s is not true. Re-run with -e %s=true once the go/no-go call has said "
              "go." % (p["go_var"], p["go_var"]))
    if phase not in phases:
        _fail("unknown phase %s (known: %s)" % (phase, ", ".join(phases)))
    idx = phases.index(phase)
    if run is not None and run["status"] == "completed" and not (idx == 0 and p["new_run"]):
        # A finished cutover is never redone by re-running the playbooks: the SQLite file
        # is stale once the app writes to PostgreSQL.
        raise _Done(dict(changed=False, skip=True, run=run,
                         msg="run %s completed at %s: nothing to do (cutover_state_new_run="
                             "true starts a new run)" % (run["run_id"], run.get("completed_at"))))
    active = run is not None and run["status"] == "in_progress"
    if idx == 0:
        # An unfinished run is resumed (its done phases are skipped below; T-15 re-proves
        # the export against the stopped source, so resuming never imports stale data).
        # new_run abandons it and starts afresh.
        if not active or p["new_run"]:
            if active:
                run["status"] = "abandoned"
                store.save(run)
            t, iso = _now()
            run_id = p["run_id"] or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
            if p["run_id"] and os.path.exists(store.path(run_id)):
                _fail("run id %s already exists" % run_id)
            base, n = run_id, 1
            while os.path.exists(store.path(run_id)):
                n += 1
                run_id = "%s-%d" % (base, n)
            run = {"run_id": run_id, "status": "in_progress", "created_at": iso,
                   "phase_order": phases, "phases": {}, "marks": {}, "data": {},
                   "rollbacks": []}
    else:
        if not active:
            _fail("no run in progress (last: %s, %s): start with the first phase %s"
                    % (run and run["run_id"], run and run["status"], phases[0]))
        missing = [q for q in phases[:idx] if not _done(run, q)]
        if missing:
            _fail("phase %s refused: earlier phase(s) not done in run %s: %s"
                             % (phase, run["run_id"], ", ".join(missing)))
    if _done(run, phase) and not p["rerun"]:
        # Resuming migrate.yml after a failure skips what is done (idempotent).
        raise _Done(dict(changed=False, skip=True, run=run,
                         msg="phase %s already done in run %s at %s (cutover_state_rerun=true "
                             "runs it again)" % (phase, run["run_id"],
                                                 run["phases"][phase]["ended_at"])))
    t, iso = _now()
    run["phases"][phase] = {"status": "running", "started_at": iso, "started_epoch": t,
                            "attempts": run["phases"].get(phase, {}).get("attempts", 0) + 1}
    return run, True


def end(p, store, run, failed=False):
    phase = p["phase"]
    rec = run["phases"].get(phase)
    if not rec or rec["status"] != "running":
        _fail("phase %s is not running in run %s" % (phase, run["run_id"]))
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


ARGSPEC = dict(
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
    go=dict(type="bool", default=True),
    go_var=dict(type="str", default="the go/no-go gate"),
)
REQUIRED_IF = [("action", "begin", ["phase", "phases"]), ("action", "end", ["phase"]),
               ("action", "fail", ["phase"]), ("action", "rollback_end", ["status"])]


class _Done(Exception):
    """Early, successful return of an action."""


def _fail(msg):
    raise AnsibleActionFail(msg)


def run_action(p, check_mode):
    action = p["action"]
    real = Store(p["state_dir"])
    # Check mode keeps a scratch record (state_dir/check-mode) so a dry run of the whole
    # runbook passes the ordering guard without touching the real record.
    store = Store(os.path.join(p["state_dir"], "check-mode")) if check_mode else real
    with open(os.path.join(real.dir, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run = store.current()
        first = action == "begin" and p["phases"] and p["phase"] == p["phases"][0]
        if check_mode and (first or run is None):
            run = real.current()
        if action == "begin":
            run, changed = begin(p, store, run)
            store.save(run, make_current=True)
            return dict(changed=changed, run=run)
        if run is None:
            if action == "abandon":  # a fresh machine: nothing to abandon
                return dict(changed=False, run=None)
            _fail("no cutover run recorded in %s" % store.dir)
        result = {}
        if action in ("end", "fail"):
            run, _ = end(p, store, run, failed=action == "fail")
        elif action == "abandon":
            if run["status"] == "in_progress":
                run["status"] = "abandoned"
        elif action == "rollback_begin":
            t, iso = _now()
            run["rollbacks"].append({"status": "running", "started_at": iso, "started_epoch": t,
                                     "trigger": p["phase"] or "manual"})
        elif action == "rollback_end":
            if not run["rollbacks"] or run["rollbacks"][-1]["status"] != "running":
                _fail("no rollback running in run %s" % run["run_id"])
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
        if action != "get":
            store.save(run)
        return dict(changed=action not in ("get", "summary"), run=run, **result)


class ActionModule(ActionBase):
    """Runs in the controller process: the record is on the control node, and a module
    round trip per state update would lengthen the downtime window for nothing."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=ARGSPEC,
                                                required_if=REQUIRED_IF)
        try:
            result.update(run_action(params, bool(self._task.check_mode)))
        except _Done as done:
            result.update(done.args[0])
        # The record as facts, so no task is spent copying it (the downtime window is
        # made of tasks): cutover_run everywhere, cutover_phase_skip/cutover_data on begin.
        facts = {"cutover_run": result.get("run")}
        if params["action"] == "begin":
            facts.update(cutover_phase_skip=bool(result.get("skip")),
                         cutover_data=result["run"]["data"])
        if "summary" in result:
            facts["cutover_summary"] = result["summary"]
        result["ansible_facts"] = facts
        return result
