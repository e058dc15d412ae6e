"""Run a list of module tasks in ONE ansible-playbook on localhost (one Ansible start-up),
as Ansible really runs our modules (AnsibleModule, module_utils, check mode)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_tasks(tmp_path, tasks: list[dict], timeout: int = 300) -> tuple[list[dict], str]:
    """Per-task results (JSON callback) and the raw output (to check nothing leaked)."""
    book = Path(tmp_path) / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                 "tasks": tasks}]))
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
           "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(book)]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=timeout)
    out = json.loads(r.stdout)
    return [t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]], r.stdout + r.stderr


def task(module: str, args: dict, check: bool = False) -> dict:
    return {"name": module, module: args, "check_mode": check, "ignore_errors": True}
