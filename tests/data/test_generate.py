import os

import numpy as np

from vibraclip_core.data.generate import generate, retry_failed, shard_path, write_shard_atomic
from vibraclip_core.data.sources import source_from_smiles
from tests.conftest import TINY_SMILES


def test_shards_hold_every_molecule_with_status(tiny_shards):
    files = sorted(tiny_shards.glob("shard_*.npz"))
    assert [f.name for f in files] == ["shard_00000.npz", "shard_00001.npz", "shard_00002.npz"]
    with np.load(files[-1], allow_pickle=False) as z:
        assert list(z["smiles"]) == TINY_SMILES[8:]
        status = list(z["status"])
        # N#N has no dipole but runs; the last SMILES is unparseable and is reported, not fatal
        assert status[:2] == ["ok", "ok"] and status[2] == "bad_source_record"
        off = z["offsets"]
        assert off[-1] == len(z["freqs_cm1"]) == len(z["ir_km_mol"]) == len(z["raman_a4_amu"])
        assert off[3] == off[2]  # the failed molecule owns no sticks


def test_rerun_skips_existing_and_recomputes_missing(tiny_shards, tmp_path):
    before = {f.name: f.stat().st_mtime_ns for f in tiny_shards.glob("*.npz")}
    calls = []

    def loader(idx):
        calls.append(set(idx))
        return source_from_smiles(TINY_SMILES)

    assert generate(tiny_shards, np.arange(len(TINY_SMILES)), loader, 3, workers=1,
                    shard_size=4) == []
    assert calls == []  # nothing to do: the source is not even read
    after = {f.name: f.stat().st_mtime_ns for f in tiny_shards.glob("*.npz")}
    assert before == after
    # a copy with one shard missing recomputes exactly that shard
    for f in tiny_shards.glob("*.npz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "shard_00001.npz").unlink()
    written = generate(tmp_path, np.arange(len(TINY_SMILES)), loader, 3, workers=1, shard_size=4)
    assert [p.name for p in written] == ["shard_00001.npz"] and calls == [{4, 5, 6, 7}]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = shard_path(tmp_path, 7)
    write_shard_atomic(path, {"a": np.arange(3)})
    assert path.exists() and not [p for p in os.listdir(tmp_path) if "tmp" in p]


def test_retry_failed_rewrites_only_failed_molecules(tiny_shards, tmp_path):
    for f in tiny_shards.glob("*.npz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    path = tmp_path / "shard_00001.npz"
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    # pretend molecule 1 of this shard failed: drop its sticks and mark it
    off = d["offsets"]
    keep = np.r_[0:off[1], off[2]:off[-1]]
    orig = d["freqs_cm1"][off[1]:off[2]].copy()
    broken = dict(d, status=np.array(["ok", "imaginary_mode", "ok", "ok"]),
                  offsets=np.concatenate([off[:2], off[2:] - (off[2] - off[1])]),
                  **{k: d[k][keep] for k in ("freqs_cm1", "ir_km_mol", "raman_a4_amu")})
    write_shard_atomic(path, broken)
    counts = retry_failed(tmp_path, lambda idx: source_from_smiles(TINY_SMILES))
    assert counts == {"retried": 1, "rescued": 1}
    with np.load(path, allow_pickle=False) as z:
        assert list(z["status"]) == ["ok"] * 4
        np.testing.assert_array_equal(z["offsets"], d["offsets"])
        np.testing.assert_allclose(z["freqs_cm1"][off[1]:off[2]], orig, atol=0.5)
        np.testing.assert_array_equal(z["freqs_cm1"][:off[1]], d["freqs_cm1"][:off[1]])
