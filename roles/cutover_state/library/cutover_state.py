#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Documentation of the cutover_state action (the work is done on the control node by
action_plugins/cutover_state.py: no module is shipped to any host)."""
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
  new_run: {description: "First phase: abandon an unfinished run (default: resume it) or start again after a completed one.", type: bool, default: false}
  rerun: {description: Let C(begin) run a phase that is already done., type: bool, default: false}
  data: {description: Merged (one level deep) into the run's data., type: dict, default: {}}
  marks: {description: Names stamped with the current time., type: list, elements: str, default: []}
  error: {description: Failure text for C(fail)/C(rollback_end)., type: str}
  status: {description: Result of the rollback for C(rollback_end)., type: str, choices: [rolled_back, refused, failed]}
  summary_path: {description: Where C(summary) writes its JSON (default next to the run record)., type: path}
  go: {description: Go/no-go gate of the phase; C(begin) fails when false., type: bool, default: true}
  go_var: {description: Name of the gate variable (for the no-go message)., type: str}
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
ansible_facts:
  description: C(cutover_run) (the record); on begin also C(cutover_phase_skip) and C(cutover_data); on summary C(cutover_summary).
  returned: always
  type: dict
run: {description: The current run record after the action., returned: always, type: dict}
summary: {description: The computed summary (action summary)., returned: when action is summary, type: dict}
summary_path: {description: Path of the summary JSON., returned: when action is summary, type: str}
'''
