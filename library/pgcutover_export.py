#!/usr/bin/python
# -*- coding: utf-8 -*-
# Thin adapter over pgcutover.export (the CLI's `pgcutover export`).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgcutover_export
short_description: Export a SQLite database into a verified pgcutover export directory
description:
  - Takes ONE consistent snapshot of the SQLite file through the SQLite backup API into
    a private 0600 file (works with a C(-wal) present and another process writing), the
    source being opened read-only and never modified.
  - Analyzes the snapshot; any blocker (see M(pgcutover_analyze)) fails the task before
    an export is written.
  - Writes one C(.rows) file per table (PostgreSQL COPY text, storage tags where a column
    mixes storage classes) and C(manifest.json) last (temp file, fsync, rename), with
    per-table SHA-256 and content digests. Directory 0700, files 0600.
  - Idempotent - when O(export_dir) already holds a complete export that verifies and
    whose content digests still equal the SQLite file, nothing is done
    (RV(changed=false)). Any other non-empty directory is refused.
version_added: "0.1.0"
author: pgcutover maintainers
options:
  sqlite_path:
    description: The SQLite database file (read-only access is enough).
    type: path
    required: true
  export_dir:
    description: Directory to create (its parent must exist), or an empty directory.
    type: path
    required: true
notes:
  - Check mode analyzes the source and returns RV(would_write) (files and row counts);
    nothing is written.
  - Returned data carries counts and digests, never row data.
'''

EXAMPLES = r'''
- name: T-30 | Export the SQLite database
  pgcutover_export:
    sqlite_path: /srv/pfa/prisma/dev.db
    export_dir: /var/lib/pgcutover/export-{{ cutover_id }}
  register: pfa_export

- name: T-30 | Record the export's manifest digest
  ansible.builtin.debug:
    msg: "{{ pfa_export.manifest_digest }} ({{ pfa_export.total_rows }} rows)"
'''

RETURN = r'''
export_dir:
  description: Absolute path of the export directory.
  returned: always
  type: str
manifest_digest:
  description: SHA-256 of the canonical manifest; identifies this export.
  returned: success
  type: str
tables:
  description: Per table C(rows), C(file), C(sha256) and C(content_digest).
  returned: success
  type: dict
  sample: {"users": {"rows": 7, "file": "002-users.rows", "sha256": "...",
           "content_digest": "v2:7:0123456789abcdef:0123456789abcdef"}}
total_rows:
  description: Rows exported (or that would be, in check mode).
  returned: always
  type: int
would_write:
  description: Check mode - file name and row count per table.
  returned: check mode
  type: dict
rows_per_second:
  description: Export speed of this run.
  returned: when changed and not in check mode
  type: int
warnings_found:
  description: Non-blocking analysis findings.
  returned: always
  type: list
  elements: dict
error:
  description: On failure, the typed error (C(blocker), C(usage), C(source)) with table,
    column, key and details - never row values.
  returned: failure
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pgcutover_ansible import require_pgcutover, run_engine


def _already_exported(export_dir, sqlite_path):
    """A complete export that verifies and still equals the source: nothing to do."""
    from pgcutover.errors import PgcutoverError
    from pgcutover.verify_export import verify_export
    from pgcutover.verify_source import verify_source
    if not os.path.isfile(os.path.join(export_dir, 'manifest.json')):
        return None
    try:
        files = verify_export(export_dir)
        verify_source(export_dir, sqlite_path)
    except PgcutoverError:
        return None
    return files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sqlite_path=dict(type='path', required=True),
            export_dir=dict(type='path', required=True),
        ),
        supports_check_mode=True)
    require_pgcutover(module)
    from pgcutover.export import export, plan_export
    from pgcutover.manifest import load_manifest

    p = module.params
    done = _already_exported(p['export_dir'], p['sqlite_path'])
    if done is not None:
        m = load_manifest(p['export_dir'])
        module.exit_json(
            changed=False, export_dir=done['export_dir'],
            manifest_digest=m['manifest_digest'], total_rows=done['total_rows'],
            tables={t: {k: v[k] for k in ('rows', 'file', 'sha256', 'content_digest')}
                    for t, v in m['tables'].items()},
            warnings_found=m.get('warnings', []))
    if module.check_mode:
        plan = run_engine(module, plan_export, p['sqlite_path'], p['export_dir'])
        if plan['blockers']:
            b = plan['blockers'][0]
            module.fail_json(msg="%d blocker(s) found, first: %s.%s: %s" % (
                len(plan['blockers']), b['table'], b.get('column'), b['reason']),
                error=dict(code='blocker', table=b['table'], column=b.get('column'),
                           details=plan['blockers']))
        module.exit_json(changed=True, export_dir=plan['export_dir'],
                         would_write=plan['would_write'], total_rows=plan['total_rows'],
                         warnings_found=plan['warnings'])
    result = run_engine(module, export, p['sqlite_path'], p['export_dir'])
    result['warnings_found'] = result.pop('warnings', [])
    result['diff'] = dict(before={}, after={
        t: "%s rows, %s" % (v['rows'], v['content_digest']) for t, v in result['tables'].items()})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
