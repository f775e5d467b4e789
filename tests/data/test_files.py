"""Tests for vibraclip_core.data.files: the one atomic write."""

import os

import numpy as np
import pytest

from vibraclip_core.data.files import atomic_path


def test_a_finished_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "table.json"
    with atomic_path(target, mode=0o644) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert not target.exists()  # nothing under the final name until the block ends
    assert target.read_text() == "new"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(target.parent)) == ["table.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "shard_0000.npz"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".npz") as tmp:
        np.savez_compressed(tmp, a=np.arange(3))
        assert tmp.exists()  # savez kept the name: it ends in .npz
        raise RuntimeError("killed half-way")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["shard_0000.npz"]
