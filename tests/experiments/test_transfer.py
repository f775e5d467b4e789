import dataclasses

import numpy as np
import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.augment import cross_theory_data
from vibraclip_core.data.datasets import load_sticks, prepare
from vibraclip_core.data.spectra import Spectrum
from vibraclip_core.experiments import measured_libraries as ML
from vibraclip_core.experiments import transfer as T
from vibraclip_core.measured.experimental import MeasuredIR


def test_lever_table_lays_out_levers_by_library_filter_and_k():
    ranks = {"zero-shot": {(ML.LIB_MEASURED, "none"): torch.tensor([0, 3, 20, 0]),
                           (ML.LIB_MEASURED, "mass"): torch.tensor([0, 0, 0, 0])},
             "calibrated": {(ML.LIB_MEASURED, "none"): torch.tensor([0, 0, 5, 30]),
                            (ML.LIB_MEASURED, "mass"): torch.tensor([0, 0, 0, 1])}}
    table = T.lever_table(ranks)
    assert list(table.index) == ["zero-shot", "calibrated"]
    assert table.loc["zero-shot", (ML.LIB_MEASURED, "none", "top1")] == 50.0
    assert table.loc["zero-shot", (ML.LIB_MEASURED, "none", "top10")] == 75.0
    assert table.loc["calibrated", (ML.LIB_MEASURED, "mass", "top1")] == 75.0


def test_cross_theory_queries_replace_only_the_band_positions(tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path))
    data = prepare(cfg)
    sticks = load_sticks(tiny_shards).ok()
    same = dataclasses.replace(sticks, ref_offsets=sticks.offsets,
                               ref_freqs_cm1=sticks.freqs_cm1.copy())
    assert torch.allclose(cross_theory_data(data, same, cfg.fwhm_cm1).ir, data.ir, atol=1e-6)
    # these generated shards carry no B3LYP frequencies: give every mode a 3 % higher one
    shifted = dataclasses.replace(same, ref_freqs_cm1=np.clip(sticks.freqs_cm1, 0, None) * 1.03)
    moved = cross_theory_data(data, shifted, cfg.fwhm_cm1)
    assert moved.graphs is data.graphs and moved.key != data.key
    assert (moved.ir - data.ir).abs().amax(1).min() > 0.01  # every molecule's spectrum moved


def test_other_theory_queries_take_that_theory_s_spectra_and_cut_the_held_out_splits(
        tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path))
    data = prepare(cfg)
    sticks = load_sticks(tiny_shards).ok()
    held = torch.cat([data.splits["val"], data.splits["test"]])
    keep = [int(data.index[r]) for r in held[:-1]]  # the last held-out molecule has no spectrum
    rows = np.array([list(sticks.index).index(i) for i in keep])
    other = sticks.select(rows)
    other = dataclasses.replace(other, ir_km_mol=other.ir_km_mol[::-1].copy())  # other bands
    out = T.cross_theory_queries(data, sticks, cfg.fwhm_cm1, other)[T.OTHER_THEORY]
    lost = int(held[-1])
    assert sum(len(out.splits[s]) for s in ("val", "test")) == len(held) - 1
    assert lost not in set(out.splits["val"].tolist()) | set(out.splits["test"].tolist())
    assert torch.equal(out.splits["train"], data.splits["train"])
    changed = (out.ir - data.ir).abs().amax(1) > 1e-3
    assert changed[held[:-1]].any() and not changed[data.splits["train"]].any()
    # Raman sticks were left as they are: matched by index, each row gets its own molecule's
    assert torch.allclose(out.raman[held[:-1]], data.raman[held[:-1]], atol=1e-6)
    assert not changed[lost]


def test_realigned_folds_embed_each_library_once_per_cache(tmp_path, monkeypatch):
    """Realigned models keep the pretrained graph encoder: with one EmbeddingCache, every
    library part goes through it once over all folds and settings; without, once per fold."""
    from vibraclip_core.data import qm9_candidates as Q
    from vibraclip_core.retrieval.embedding import EmbeddingCache
    from vibraclip_core.model.vibraclip import VibraCLIP
    from vibraclip_core.data.molecules import canonical_identity
    from vibraclip_core.experiments.realign import kfold_splits, measured_data, with_mass_stats
    from vibraclip_core.training.train import train

    monkeypatch.setattr(Q, "SHARD_SIZE", 32)
    quiet = {"enable_progress_bar": False}
    cfg = get_config("tiny", n_molecules=60, max_epochs=1, batch_size=16, build_dir=str(tmp_path))
    qm9 = prepare(cfg)
    pre = train(cfg, qm9, tag="pre", trainer_kwargs=quiet)
    x = np.linspace(500.0, 3900.0, 500)
    recs = [MeasuredIR(f"{s}.jdx", s, s, canonical_identity(s), Spectrum(
                x, np.exp(-0.5 * ((x - c) / 12) ** 2), "absorbance", f"{s}.jdx", []))
            for s, c in (("CC(C)=O", 1720), ("CCC=O", 1740), ("CCO", 1050), ("CC#N", 2250),
                         ("CO", 1030), ("CC(C)=O", 1715))]
    measured = with_mass_stats(measured_data(recs)[0], pre.best_checkpoint)
    libraries = ML.measured_libraries(qm9, measured, 30, cfg.build_dir, 0, 1)
    folds = kfold_splits(measured.identity, 3, seed=0)
    args = (cfg, pre.best_checkpoint, measured, folds, libraries, cfg.build_dir, 1, quiet,
            (("last_layer", 1e-3),))
    T.realigned_out_of_fold(*args)  # trains the three folds' runs (later calls load them)
    encoded = []
    real = VibraCLIP.graph_features
    monkeypatch.setattr(VibraCLIP, "graph_features",
                        lambda self, batch: encoded.append(int(batch.num_graphs))
                        or real(self, batch))
    cached, _ = T.realigned_out_of_fold(*args, cache=EmbeddingCache())
    parts = {id(p[0]): len(p[1]) for lib in libraries.values() for p in lib.parts}
    assert sum(encoded) == sum(parts.values())  # measured rows once, distractors, isomers
    encoded.clear()
    uncached, _ = T.realigned_out_of_fold(*args)
    assert sum(encoded) == len(folds) * sum(len(lib) for lib in libraries.values())
    assert cached.keys() == uncached.keys()
    assert all(torch.equal(cached[k], uncached[k]) for k in cached)


def test_cross_theory_readings_and_display_take_their_numbers_from_the_table():
    import pandas as pd
    rows = {}
    values = {("pretrained", T.SAME_THEORY): 83.5, ("pretrained", T.CROSS_THEORY): 3.8,
              ("pretrained", T.OTHER_THEORY): 27.0, ("augmented pretraining", T.SAME_THEORY): 80.1,
              ("augmented pretraining", T.CROSS_THEORY): 60.2,
              ("augmented pretraining", T.OTHER_THEORY): 61.3}
    for key, top1 in values.items():
        rows[key] = {(m, c): v for m in T.THEORY_MODES for c, v in (
            ("n", 1123), ("top1", top1 - (10 if m == "ir" else 0)),
            ("top1_ci", f"{top1 - 1:.1f}–{top1 + 1:.1f}"), ("top10", 99.0))}
    cross = pd.DataFrame(rows).T
    text = T.cross_theory_readings(cross)
    assert "among the 1123 test molecules" in text
    assert "GFN1-xTB spectra 27.0 → 61.3 % (IR alone 17.0 → 51.3 %)" in text
    assert "B3LYP frequencies 3.8 → 60.2 %" in text and "keeps both models" in text
    shown = T.theory_display(cross)
    assert shown.loc[("augmented pretraining", T.OTHER_THEORY), "IR + Raman top-1 %"] \
        == "61.3 (60.3–62.3)"
    from vibraclip_core.experiments.plots import plot_theory_bars
    ax = plot_theory_bars(cross).axes[0]
    heights = sorted(round(b.get_height(), 1) for b in ax.patches)
    assert heights == sorted(values.values())  # one bar per (model, queries), its top-1
    close = cross.copy()
    close.loc[("augmented pretraining", T.SAME_THEORY), ("ir+raman library", "top1")] = 83.0
    assert "within a point" in T.cross_theory_readings(close)


def test_the_theories_a_model_trained_on_are_named_and_the_unseen_one_follows():
    gfn2 = get_config("cpu")
    assert T.training_spectra_text(gfn2) == "GFN2-xTB only"
    assert "GFN1-xTB and the B3LYP-frequency queries are both theories it never saw" in (
        T.unseen_theories_text(gfn2))
    mixed = gfn2.replace(second_theory="data/qm9_gfn1_train", second_theory_fraction=0.5,
                         second_theory_molecules=6000)
    text = T.unseen_theories_text(mixed)
    assert ("It trained on GFN2-xTB, and for the first 6,000 training molecules of "
            "`data/qm9_gfn1_train` that set's spectrum instead, with probability 0.5:") in text
    assert "GFN1-xTB queries are of a theory it trained on" in text
    assert "B3LYP-frequency queries (GFN2-xTB intensities kept) are the positions it never saw" \
        in text
    assert "measured spectra are the unseen domain" in text
    assert "for the training molecules of" in T.training_spectra_text(
        mixed.replace(second_theory_molecules=None))
