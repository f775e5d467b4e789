import numpy as np
import pytest
import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import grouped_split, load_sticks, prepare, take_ragged


def test_take_ragged_matches_naive_loop():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 5, size=20)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.normal(size=offsets[-1])
    rows = rng.permutation(20)[:12]
    new_off, (new_vals,) = take_ragged(offsets, [values], rows)
    naive = np.concatenate([values[offsets[r]:offsets[r + 1]] for r in rows])
    np.testing.assert_array_equal(new_vals, naive)
    assert new_off[-1] == len(naive) and np.all(np.diff(new_off) == lengths[rows])


def test_grouped_split_keeps_identities_together_and_is_seeded():
    ids = [f"m{i % 37}" for i in range(200)]
    a = grouped_split(ids, seed=3)
    b = grouped_split(ids, seed=3)
    c = grouped_split(ids, seed=4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    owner = {}
    for name, rows in a.items():
        for r in rows:
            assert owner.setdefault(ids[r], name) == name
    assert sum(len(v) for v in a.values()) == 200
    n_groups = {k: len({ids[r] for r in v}) for k, v in a.items()}
    assert n_groups["train"] == round(0.8 * 37) and n_groups["val"] == round(0.1 * 37)
    with pytest.raises(ValueError, match="sum to 1"):
        grouped_split(ids, 0, (0.5, 0.1, 0.1))


def test_load_sticks_concatenates_shards(tiny_shards):
    s = load_sticks(tiny_shards)
    assert len(s) == 11 and len(s.shard_files) == 3
    ok = s.ok()
    assert set(ok.status) == {"ok"} and len(ok) == 10
    f, ir, raman = ok.sticks(list(ok.smiles).index("O"))
    assert len(f) == 3 and (ir > 0).all()
    assert s.failure_counts() == {"bad_source_record": 1}


def test_missing_and_corrupt_shards_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vibraclip simulate"):
        load_sticks(tmp_path)
    (tmp_path / "shard_00000.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="shard_00000.npz"):
        load_sticks(tmp_path)


def test_prepare_builds_cache_and_reuses_it(tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path), workers=1)
    data = prepare(cfg)
    assert len(data) == 10 and data.ir.shape == (10, 1750) and data.raman.dtype == torch.float32
    assert float(data.ir.min()) >= 0 and torch.allclose(data.ir.max(1).values, torch.ones(10))
    # 'OCC' and 'C(O)C' are one molecule: same split
    rows = [i for i, s in enumerate(data.smiles) if s in ("OCC", "C(O)C")]
    where = {k: set(v.tolist()) for k, v in data.splits.items()}
    assert len({k for k, v in where.items() for r in rows if r in v}) == 1
    g = data.graphs
    assert set(g) == {"z", "pos", "node_offsets"}  # what the graph encoder reads
    assert g["node_offsets"][-1] == len(g["z"]) == len(g["pos"])
    train_mass = data.mass_da[data.splits["train"]]
    assert abs(float(data.standardized_mass()[data.splits["train"]].mean())) < 1e-4
    assert data.mass_mean == pytest.approx(float(train_mass.mean()), rel=1e-5)
    caches = list((tmp_path / "cache").glob("data-*.pt"))
    assert len(caches) == 1
    again = prepare(cfg)
    assert again.smiles == data.smiles and torch.equal(again.ir, data.ir)
    other = prepare(cfg.replace(fwhm_cm1=30.0))  # a new parameter gives a new cache entry
    assert len(list((tmp_path / "cache").glob("data-*.pt"))) == 2
    assert not torch.equal(other.ir, data.ir)


def test_prepare_reads_a_qm9s_folder(tmp_path):
    from tests.data.test_qm9s import MOLECULES, build_folder

    folder = build_folder(tmp_path / "qm9s")
    cfg = get_config("tiny", data_dir=str(folder), build_dir=str(tmp_path / "build"), workers=1,
                     n_molecules=None)
    data = prepare(cfg)
    assert data.ir.shape[1] == 1750 and len(data) == data.raman.shape[0] >= 2
    assert data.report["molecules_in_qm9s"] == len(data)
    by_qm9 = {qm9: smi for qm9, smi, _ in MOLECULES.values()}
    assert all(by_qm9[int(i)] == s for i, s in zip(data.index, data.smiles))


def _write_shard(folder, **edits):
    """One hand-made 2-molecule shard (2 + 1 sticks); `edits` replace or (None) drop arrays."""
    arrays = {"index": np.array([0, 1]), "smiles": np.array(["O", "C"]),
              "n_atoms": np.array([3, 5]), "status": np.array(["ok", "ok"]),
              "seconds": np.array([0.1, 0.2]), "offsets": np.array([0, 2, 3]),
              "freqs_cm1": np.array([1600.0, 3700.0, 3000.0]),
              "ir_km_mol": np.array([60.0, 5.0, 20.0]), "raman_a4_amu": np.array([1.0, 2.0, 3.0]),
              "ref_offsets": np.array([0, 2, 3]), "ref_freqs_cm1": np.array([1650.0, 3800, 3100])}
    for k, v in edits.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    folder.mkdir(exist_ok=True)
    np.savez(folder / "shard_00000.npz", **arrays)


def test_a_valid_hand_made_shard_loads(tmp_path):
    _write_shard(tmp_path / "ok")
    s = load_sticks(tmp_path / "ok")
    assert len(s) == 2 and s.sticks(1)[0].tolist() == [3000.0]


@pytest.mark.parametrize("edits, array", [
    ({"status": None}, "status"),
    ({"freqs_cm1": None}, "freqs_cm1"),
    ({"offsets": np.array([0, 3, 2])}, "offsets"),
    ({"offsets": np.array([0, 2, 5])}, "offsets"),
    ({"ref_offsets": np.array([0, 2])}, "ref_offsets"),
    ({"freqs_cm1": np.array([1600.0, np.nan, 3000.0])}, "freqs_cm1"),
    ({"ir_km_mol": np.array([60.0, np.inf, 20.0])}, "ir_km_mol"),
    ({"raman_a4_amu": np.array([1.0, 2.0])}, "raman_a4_amu"),
    ({"smiles": np.array(["O"])}, "smiles"),
])
def test_damaged_shards_name_the_file_and_the_array(tmp_path, edits, array):
    _write_shard(tmp_path, **edits)
    with pytest.raises(ValueError, match=f"shard_00000.npz: array '{array}'"):
        load_sticks(tmp_path)
