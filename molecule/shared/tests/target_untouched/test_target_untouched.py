"""The target database is exactly as it was before (dry run, or a failed import)."""
from __future__ import annotations


def test_no_pgcutover_objects(target_now):
    # No imported table and no control marker: nothing was committed.
    assert target_now["pgcutover_objects"] == []


def test_target_fingerprint_unchanged(facts, target_now):
    before = facts["target_before"]
    assert target_now["relations"] == before["relations"]
    assert target_now["row_counts"] == before["row_counts"]
    assert target_now["sha256"] == before["sha256"]
