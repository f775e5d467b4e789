import numpy as np
import pytest
import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import augment as A
from vibraclip_core.data.datasets import StickSet, load_sticks, prepare
from vibraclip_core.data.spectra import model_grid, sticks_to_model_input
from vibraclip_core.training.datamodule import VibraDataModule
from vibraclip_core.training.lightning_module import VibraCLIPModule
from vibraclip_core.training.train import train


def broaden_on_model_grid_naive(freqs_cm1: torch.Tensor, intensities: torch.Tensor,
                                fwhm_cm1: torch.Tensor | float) -> torch.Tensor:
    """(B, 1750) float32; `broaden_on_model_grid` by exact per-stick evaluation (its twin)."""
    grid = torch.from_numpy(model_grid()).float()
    hw2 = (torch.as_tensor(fwhm_cm1, dtype=torch.float32).reshape(-1, 1, 1) / 2) ** 2
    kernel = hw2 / ((grid - freqs_cm1.unsqueeze(-1)) ** 2 + hw2)
    return torch.einsum("bm,bmg->bg", intensities * (freqs_cm1 > 0), kernel)


def _sticks(freqs, ir, raman):
    return (torch.tensor([freqs], dtype=torch.float32), torch.tensor([ir], dtype=torch.float32),
            torch.tensor([raman], dtype=torch.float32))


@pytest.mark.parametrize("fwhm", [8.0, 15.0, 40.0])
def test_fft_broadening_matches_exact_lorentzians(fwhm):
    gen = torch.Generator().manual_seed(0)
    freqs = 450 + 3700 * torch.rand(6, 30, generator=gen)
    freqs[:, -5:] = 0  # padding
    ints = torch.rand(6, 30, generator=gen)
    fast = A.broaden_on_model_grid(freqs, ints, fwhm)
    exact = broaden_on_model_grid_naive(freqs, ints, fwhm)
    err = ((fast - exact).abs().amax(1) / exact.amax(1)).max()
    assert err < (0.05 if fwhm == 8.0 else 0.02)


def test_lone_stick_peaks_at_its_frequency_with_its_height():
    f, ir, _ = _sticks([1500.0, 0.0], [2.0, 5.0], [0.0, 0.0])
    y = A.broaden_on_model_grid(f, ir, 20.0)[0]
    grid = model_grid()
    assert abs(grid[int(y.argmax())] - 1500.0) <= 2.1
    assert y.max() == pytest.approx(2.0, rel=0.03)  # the padded stick (freq 0) adds nothing


def test_no_transforms_reproduce_the_cached_model_input():
    freqs = np.array([800.0, 1700.0, 2950.0, 3400.0], np.float32)
    ir = np.array([10.0, 60.0, 30.0, 5.0], np.float32)
    raman = np.array([2.0, 1.0, 9.0, 3.0], np.float32)
    f, i, r = _sticks(freqs, ir, raman)
    out_ir, out_ra = A.augment_sticks(f, i, r, (), 15.0, torch.Generator().manual_seed(0))
    ref_ir = sticks_to_model_input(freqs, ir, np.array([0, 4]), 15.0)
    ref_ra = sticks_to_model_input(freqs, raman, np.array([0, 4]), 15.0)
    assert np.abs(out_ir.numpy() - ref_ir).max() < 0.02
    assert np.abs(out_ra.numpy() - ref_ra).max() < 0.02


def test_scale_moves_bands_within_its_range_and_cutoff_zeroes_the_low_end():
    f, i, r = _sticks([1000.0, 3000.0], [1.0, 1.0], [1.0, 1.0])
    grid = model_grid()
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        ir, _ = A.augment_sticks(f.expand(8, -1), i.expand(8, -1), r.expand(8, -1), ("scale",),
                                 15.0, gen)
        low = grid[ir[:, grid < 2000].argmax(1).numpy()]
        lo, hi = 1000 * A.DEFAULT_RANGES.scale[0] - 2.1, 1000 * A.DEFAULT_RANGES.scale[1] + 2.1
        assert np.all((low >= lo) & (low <= hi))
        assert low.std() > 1.0  # molecules draw different scales
    gen = torch.Generator().manual_seed(1)
    ir, ra = A.augment_sticks(f.expand(64, -1), i.expand(64, -1), r.expand(64, -1), ("cutoff",),
                              15.0, gen)
    cut = (ir[:, grid < A.CUTOFF_RANGE_CM1[0] + 1] == 0).all(1)
    assert 0.2 < cut.float().mean() < 0.8  # about CUTOFF_PROBABILITY of the molecules
    assert torch.equal((ir == 0)[:, :50], (ra == 0)[:, :50])  # both spectra share the range


def test_augmentation_is_seeded_and_rejects_unknown_transforms():
    f, i, r = _sticks([900.0, 1600.0, 3100.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    a = A.augment_sticks(f, i, r, A.TRANSFORMS, 15.0, torch.Generator().manual_seed(3))
    b = A.augment_sticks(f, i, r, A.TRANSFORMS, 15.0, torch.Generator().manual_seed(3))
    c = A.augment_sticks(f, i, r, A.TRANSFORMS, 15.0, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    assert 0 <= float(a[0].min()) and float(a[0].max()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shift"):
        A.augment_sticks(f, i, r, ("shift",), 15.0, torch.Generator())


def test_rank_pairing_assigns_reference_frequencies_by_rank():
    gfn2 = np.array([3000.0, 1000.0, 1500.0], np.float32)
    ref = np.array([1550.0, 1030.0, 3100.0])
    assert A.rank_paired_frequencies(gfn2, ref).tolist() == [3100.0, 1030.0, 1550.0]
    # an extra reference mode: the lowest one is left unpaired
    assert A.rank_paired_frequencies(gfn2, np.r_[ref, 200.0]).tolist() == [3100.0, 1030.0, 1550.0]
    # an extra GFN2 mode: the lowest GFN2 mode keeps its frequency
    assert A.rank_paired_frequencies(gfn2, ref[[0, 2]]).tolist() == [3100.0, 1000.0, 1550.0]


def _stickset(freqs, refs):
    n = len(freqs)
    off = np.concatenate([[0], np.cumsum([len(f) for f in freqs])])
    roff = np.concatenate([[0], np.cumsum([len(r) for r in refs])])
    flat = np.concatenate(freqs).astype(np.float32)
    return StickSet(np.arange(1, n + 1), ["C"] * n, np.full(n, 5), np.array(["ok"] * n),
                    np.zeros(n), off, flat, np.ones_like(flat), np.ones_like(flat), roff,
                    np.concatenate(refs).astype(np.float32))


def test_reference_scales_recover_a_known_ratio():
    freqs = [np.array([700.0, 1400.0, 3000.0]), np.array([1100.0, 2900.0, 3300.0])]
    refs = [f / np.where(f > 2500, 0.96, 0.98) for f in freqs]
    below, above = A.fit_reference_scales(_stickset(freqs, refs))
    assert below == pytest.approx(0.98) and above == pytest.approx(0.96)
    moved = A.cross_theory_sticks(_stickset(freqs, refs), below, above)
    assert np.allclose(moved.freqs_cm1, np.concatenate(freqs), rtol=1e-6)


def test_augmented_training_draws_from_the_sticks_and_stays_deterministic(tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path), max_epochs=1,
                     augment=A.TRANSFORMS)
    data = prepare(cfg)
    dm = VibraDataModule(cfg, data)
    dm.setup("fit")  # the padded sticks are built in setup
    sticks = load_sticks(tiny_shards).ok()
    assert dm.sticks["freqs_cm1"].shape[0] == len(data)
    m = int(data.splits["train"][0])
    row = [int(i) for i in sticks.index].index(int(data.index[m]))
    f, ir, _ = sticks.sticks(row)
    assert np.allclose(np.sort(dm.sticks["freqs_cm1"][m][:len(f)].numpy()),
                       np.sort(np.clip(f, 0, None)))
    batch = next(iter(dm.train_dataloader()))
    module = VibraCLIPModule(cfg.to_dict())
    clean = batch.ir.clone()
    module._augment(batch)
    changed = (batch.ir - clean).abs().amax(1) > 1e-3
    assert 0.5 < changed.float().mean() <= 1.0  # about AUGMENTED_FRACTION of the rows
    again = next(iter(dm.train_dataloader()))
    VibraCLIPModule(cfg.to_dict())._augment(again)
    assert torch.equal(again.ir, batch.ir)
    quiet = {"enable_progress_bar": False}
    one = train(cfg, data, tag="a", trainer_kwargs=quiet).history[-1]["train_loss"]
    two = train(cfg, data, tag="b", trainer_kwargs=quiet).history[-1]["train_loss"]
    plain = train(cfg.replace(augment=()), data, tag="a", trainer_kwargs=quiet)
    assert one == two and plain.history[-1]["train_loss"] != one


def test_augmenting_a_qm9s_folder_says_it_has_no_sticks(tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path))
    data = prepare(cfg)
    qm9s = tmp_path / "qm9s"
    (qm9s / "qm9s_csv").mkdir(parents=True)
    with pytest.raises(ValueError, match="QM9S folder holds broadened spectra only"):
        VibraDataModule(cfg.replace(data_dir=str(qm9s), augment=("scale",)), data)
    VibraDataModule(cfg.replace(data_dir=str(qm9s)), data)  # without augmentation it is fine


def _ratio_sticks(n: int, scale: float, xh: float) -> StickSet:
    """n molecules whose reference frequencies are GFN2's times `scale` (times `xh` more above
    2,500 cm-1)."""
    base = np.array([600.0, 1100.0, 1500.0, 1700.0, 2900.0, 3050.0, 3400.0])
    freqs = np.tile(base, n).astype(np.float32)
    ref = np.where(base > 2500, base * scale * xh, base * scale)
    return StickSet(index=np.arange(n), smiles=["C"] * n, n_atoms=np.full(n, 5),
                    status=np.full(n, "ok"), seconds=np.ones(n),
                    offsets=np.arange(n + 1) * len(base),
                    freqs_cm1=freqs, ir_km_mol=np.ones_like(freqs),
                    raman_a4_amu=np.ones_like(freqs),
                    ref_offsets=np.arange(n + 1) * len(base),
                    ref_freqs_cm1=np.tile(ref, n).astype(np.float32))


def test_position_ranges_are_measured_on_the_sticks_they_are_given():
    from vibraclip_core.data.augment_ranges import AugmentRanges, ranges_from_training
    r = ranges_from_training(_ratio_sticks(40, 1.02, 1.01))
    assert r.scale == pytest.approx((0.98, 1.02), abs=1e-3)  # symmetric about 1
    assert r.xh_scale == pytest.approx((0.99, 1.01), abs=1e-3)
    assert r.mode_jitter_max_sd == pytest.approx(0.0, abs=1e-4)  # no scatter about the scales
    assert r.molecules == 40
    assert ranges_from_training(_ratio_sticks(5, 1.02, 1.01)) == AugmentRanges()  # too few


def test_new_transforms_change_intensities_and_shapes_but_not_the_band_centres():
    freqs, ir = [900.0, 1800.0, 3000.0, 0.0], [10.0, 10.0, 10.0, 0.0]
    f, i, r = _sticks(freqs, ir, ir)
    f, i, r = f.repeat(8, 1), i.repeat(8, 1), r.repeat(8, 1)
    gen = torch.Generator().manual_seed(1)
    clean, _ = A.augment_sticks(f, i, r, (), 15.0, gen)
    band, _ = A.augment_sticks(f, i, r, ("band_intensity",), 15.0, gen)
    grid = model_grid()
    at = [int(np.abs(grid - x).argmin()) for x in freqs[:3]]
    # one factor per region: the three bands' heights are no longer equal, positions stay
    heights = band[:, at]
    assert (heights.amax(1) - heights.amin(1)).min() > 0.05
    peaks = band.argmax(1).numpy()
    assert all(min(abs(p - a) for a in at) <= 2 for p in peaks)  # still at a band centre
    shaped, _ = A.augment_sticks(f, i, r, ("shape",), 15.0, gen)
    assert not torch.allclose(shaped, clean, atol=1e-2)  # envelopes differ from Lorentzians
    weak, _ = A.augment_sticks(f, i, r, ("intensity",), 15.0, torch.Generator().manual_seed(2),
                               strength=0.0)
    assert torch.allclose(weak, clean, atol=1e-5)  # strength 0 switches the intensity draw off


def test_band_kernel_defaults_to_a_unit_lorentzian_and_branches_sit_at_their_offsets():
    k = A.band_kernel(20.0)
    assert float(k.max()) == pytest.approx(1.0) and int(k.argmax()) == 0
    pqr = A.band_kernel(4.0, branch_sep_cm1=20.0, q_fraction=0.0)[0]
    step = float(model_grid()[1] - model_grid()[0])
    peak = int(pqr[:A.FFT_POINTS // 2].argmax())
    assert abs(peak * step - 20.0) <= step


def _second_theory_copy(shards, out, leave_out: int, scale: float = 0.9):
    """One shard holding the molecules of `shards` but source index `leave_out`, every
    frequency times `scale`: a stand-in for another level of theory."""
    sticks = load_sticks(shards)
    s = sticks.select(np.flatnonzero(sticks.index != leave_out))
    out.mkdir()
    np.savez(out / "shard_00000.npz", index=s.index, smiles=np.array(s.smiles),
             n_atoms=s.n_atoms, status=s.status, seconds=s.seconds, offsets=s.offsets,
             freqs_cm1=s.freqs_cm1 * scale, ir_km_mol=s.ir_km_mol, raman_a4_amu=s.raman_a4_amu,
             ref_offsets=s.ref_offsets, ref_freqs_cm1=s.ref_freqs_cm1, method=np.array("GFN1-xTB"))
    return out


def test_second_theory_spectra_replace_training_inputs_only_where_they_exist(tiny_shards,
                                                                             tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path / "b"),
                     max_epochs=1, second_theory_fraction=1.0)
    data = prepare(cfg)
    left_out = int(data.index[data.splits["train"][0]])  # a training molecule without one
    other = _second_theory_copy(tiny_shards, tmp_path / "other", left_out)
    cfg = cfg.replace(second_theory=str(other))
    dm = VibraDataModule(cfg, data)
    dm.setup("fit")
    has = dm.sticks["has_second"].flatten().bool()
    in_other = torch.tensor([int(i) != left_out for i in data.index])
    train_rows = torch.zeros(len(data), dtype=torch.bool)
    train_rows[data.splits["train"]] = True
    assert torch.equal(has, in_other & train_rows)  # never a validation or test molecule
    m = int(torch.nonzero(has)[0])
    n_modes = int((dm.sticks["freqs_cm1"][m] > 0).sum())
    assert torch.allclose(dm.sticks["second_freqs_cm1"][m][:n_modes],
                          0.9 * dm.sticks["freqs_cm1"][m][:n_modes], rtol=1e-5)
    batch = next(iter(dm.train_dataloader()))
    clean = batch.ir.clone()
    VibraCLIPModule(cfg.to_dict())._augment(batch)
    ir, _ = A.augment_sticks(batch.sticks_second_freqs_cm1, batch.sticks_second_ir,
                             batch.sticks_second_raman, (), cfg.fwhm_cm1, torch.Generator())
    swapped = batch.sticks_has_second.flatten() > 0
    assert swapped.any() and torch.allclose(batch.ir[swapped], ir[swapped], atol=1e-5)
    # the molecule left out has no second-theory spectrum: it keeps its GFN2 input (as cached,
    # or broadened again from its sticks: the same within the FFT's 0.02)
    kept = ~swapped
    assert kept.sum() == 1 and (batch.ir[kept] - clean[kept]).abs().max() < 0.02
    assert (batch.ir[swapped] - clean[swapped]).abs().amax(1).min() > 0.05  # 10 % shifted
    # a run is pinned to a number of the set's molecules; bad settings fail with their name
    assert cfg.digest() != cfg.replace(
        second_theory_molecules=5).digest()
    with pytest.raises(ValueError, match="second_theory_molecules=99"):
        VibraDataModule(cfg.replace(second_theory_molecules=99), data).setup("fit")
    with pytest.raises(ValueError, match="needs a second_theory folder"):
        VibraDataModule(cfg.replace(second_theory=None), data)
    with pytest.raises(ValueError, match="must lie in"):
        VibraDataModule(cfg.replace(second_theory_fraction=1.5), data)
    # without the setting, runs keep their old folders (digest) and their old draws
    assert get_config("tiny").digest() == get_config(
        "tiny", second_theory=None, second_theory_fraction=0.0).digest()
