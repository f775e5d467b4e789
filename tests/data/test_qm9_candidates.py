"""The shared QM9 conformer cache: missing shards computed as one stream, resumable, pool = serial.

Shards are shrunk to 8 molecules (SHARD_SIZE) so that each test computes a few dozen geometries.
"""

import numpy as np
import pytest

from vibraclip_core.data import qm9_candidates as Q


def shard_arrays(cache, shard: int) -> dict[str, np.ndarray]:
    with np.load(Q.shard_file(cache, 0, shard), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def assert_same_shard(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        if k != "seconds":  # timings differ from run to run
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(Q, "SHARD_SIZE", 8)
    monkeypatch.setattr(Q, "SOURCE_GROUP", 2)


def test_missing_shards_read_the_source_once_per_group_and_match_compute_shard(
        tmp_path, monkeypatch, small_shards):
    reads = []
    real = Q.load_qm9_source
    monkeypatch.setattr(Q, "load_qm9_source", lambda ix: reads.append(len(ix)) or real(ix))
    Q.ensure_shards([4, 0, 2], tmp_path, 0, progress=False)
    assert reads == [16, 8]  # groups [4, 0] and [2]: one read of QM9's tables each
    for shard in (4, 0, 2):
        assert_same_shard(shard_arrays(tmp_path, shard), Q.compute_shard(shard, 0, progress=False))
    s = Q.load_shard(tmp_path, 0, 2)
    assert len(s) == 8 and s.seconds.shape == (8,) and (s.seconds > 0).all()
    assert not [p for p in (tmp_path / "seed-0").iterdir() if "tmp" in p.name]


def test_interrupted_computation_keeps_finished_shards_and_resumes(tmp_path, monkeypatch,
                                                                   small_shards):
    real = Q._geometry_job
    poisoned = int(Q.qm9_order()[1 * 8 + 3])  # a molecule of shard 1, in shard 0's group

    def job(args):
        if args[0] == poisoned:
            raise RuntimeError("killed")
        return real(args)
    monkeypatch.setattr(Q, "_geometry_job", job)
    with pytest.raises(RuntimeError, match="killed"):
        Q.ensure_shards([0, 1, 2, 3], tmp_path, 0, progress=False)
    written = sorted(p.name for p in (tmp_path / "seed-0").glob("*.npz"))
    assert written == [Q.shard_file(tmp_path, 0, 0).name]  # each shard written when done
    mtime = Q.shard_file(tmp_path, 0, 0).stat().st_mtime_ns
    computed = []
    monkeypatch.setattr(Q, "_geometry_job", lambda a: computed.append(a[0]) or real(a))
    Q.ensure_shards([0, 1, 2, 3], tmp_path, 0, progress=False)
    assert computed == Q.qm9_order()[8:32].tolist()  # shards 1, 2 and 3 only
    assert Q.shard_file(tmp_path, 0, 0).stat().st_mtime_ns == mtime


def test_process_pool_writes_the_same_shards(tmp_path, small_shards):
    Q.ensure_shards([0, 1], tmp_path / "pool", 0, workers=2, progress=False)
    Q.ensure_shards([0, 1], tmp_path / "serial", 0, workers=1, progress=False)
    for shard in (0, 1):
        assert_same_shard(shard_arrays(tmp_path / "pool", shard),
                          shard_arrays(tmp_path / "serial", shard))
