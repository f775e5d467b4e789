"""Tests for `vibraclip identify`: candidate sets (candidates), libraries (SMILES and QM9) and
their on-disk cache (library_cache), ranking and filters (identify), errors, outputs (report)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from vibraclip_core.app import cli
from vibraclip_core.app import identify as I
from vibraclip_core.app import report
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import qm9_candidates as Q
from vibraclip_core.data.mass import MassStats, MassStatsError, mass_stats_for, write_mass_stats
from vibraclip_core.data.molecules import molecular_formula, mol_from_smiles
from vibraclip_core.data.sources import load_qm9_source, qm9_order
from vibraclip_core.data.spectra import Spectrum, model_grid
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import candidates as C
from vibraclip_core.retrieval import library as LB
from vibraclip_core.retrieval import library_cache as LC
from vibraclip_core.retrieval.candidate_spectra import candidate_spectra
from vibraclip_core.retrieval.embedding import embed_structures, model_digest
from vibraclip_core.retrieval.rerank import ALL_CANDIDATES, Reranker
from vibraclip_core.retrieval.spectral_match import MatchSettings

# 8 candidates: 6 usable, one unparseable, one with Cl (outside H/C/N/O/F)
LIBRARY = ["CCO ethanol", "COC dimethyl ether", "CC(C)=O acetone", "c1ccccc1 benzene", "CC#N",
           "C=C", "CCCl chloroethane", "C1CC( broken"]
USABLE = ["CCO", "COC", "CC(C)=O", "c1ccccc1", "CC#N", "C=C"]


def lorentzians(x: np.ndarray, centres: list[float], fwhm: float = 20.0) -> np.ndarray:
    hw = fwhm / 2
    return sum(hw**2 / ((x - c) ** 2 + hw**2) for c in centres)


def write_checkpoint(path: Path, **overrides) -> VibraCLIP:
    """Save a random tiny VibraCLIP as the Lightning-style dict that train.load_model reads."""
    torch.manual_seed(0)
    model = VibraCLIP(get_config("tiny", **overrides), graph_output_initializer="glorot_orthogonal")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "hyper_parameters": {"config": model.config.to_dict()}}, path)
    return model.eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("identify")
    mass_ckpt = root / "run_mass" / "best.ckpt"
    write_checkpoint(mass_ckpt)  # tiny profile: loss all_pairs, mass anchoring on
    write_mass_stats(mass_ckpt.parent, SimpleNamespace(mass_mean=90.0, mass_std=12.0, key="k"))
    ir_ckpt = root / "run_ir" / "best.ckpt"
    write_checkpoint(ir_ckpt, loss="graph_ir", mass=False)
    x = np.linspace(4000.0, 400.0, 1801)  # descending, as many instruments write it
    y = 0.05 + lorentzians(x, [1050.0, 1380.0, 2970.0, 3350.0])
    ir = root / "ethanol_ir.jdx"
    ir.write_text("\n".join(
        ["##TITLE=ethanol", "##JCAMP-DX=4.24", "##DATA TYPE=INFRARED SPECTRUM", "##XUNITS=1/CM",
         "##YUNITS=ABSORBANCE", "##XFACTOR=1.0", "##YFACTOR=1.0", f"##FIRSTX={x[0]}",
         f"##LASTX={x[-1]}", f"##NPOINTS={x.size}", "##XYPOINTS=(XY..XY)",
         *(f"{a:.3f}, {b:.6f}" for a, b in zip(x, y)), "##END="]) + "\n")
    raman = root / "ethanol_raman.csv"
    xr = np.arange(200.0, 3600.0, 2.0)
    raman.write_text("wavenumber_cm1,intensity\n" + "".join(
        f"{a},{b:.6f}\n" for a, b in zip(xr, lorentzians(xr, [880.0, 1455.0, 2930.0]))))
    bad = root / "corrupt_ir.jdx"
    bad.write_text("##TITLE=broken\n##XYPOINTS=(XY..XY)\nthis is, not data\n")
    library = root / "library.smi"
    library.write_text("# tiny test library\n" + "\n".join(LIBRARY) + "\n")
    return SimpleNamespace(root=root, mass_ckpt=mass_ckpt, ir_ckpt=ir_ckpt, ir=ir, raman=raman,
                           bad=bad, library=library, cache=root / "cache")


def run_cli(files: SimpleNamespace, *extra: str, ckpt: Path | None = None) -> None:
    """identify with the model alone unless `extra` asks for --rerank."""
    rerank = [] if "--rerank" in extra else ["--rerank", "0"]
    cli.main(["identify", "--checkpoint", str(ckpt or files.mass_ckpt), "--ir", str(files.ir),
              "--candidates", str(files.library), "--cache-dir", str(files.cache),
              "--workers", "1", *rerank, *extra])


def table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["rank", "score"])
    return [ln.split() for ln in lines[head + 1:] if ln.split() and ln.split()[0].isdigit()]


def test_load_candidates_files(tmp_path):
    smi = tmp_path / "lib.smi"
    smi.write_text("# comment\n\nCC#N acetonitrile\n  CCO\tethanol\n")
    assert C.load_candidates(smi) == ["CC#N", "CCO"]
    csv = tmp_path / "lib.csv"
    csv.write_text("smiles,name\nC=C,ethene\n\"CO\",methanol\n")
    assert C.load_candidates(csv) == ["C=C", "CO"]
    with pytest.raises(C.IdentifyError, match="lib.sdf"):
        C.load_candidates(tmp_path / "lib.sdf")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(C.IdentifyError, match="no SMILES"):
        C.load_candidates(tmp_path / "empty.txt")


def test_qm9_candidates_are_all_of_qm9():
    candidates = C.load_candidates("qm9")
    assert isinstance(candidates, C.QM9Candidates) and len(candidates) == 130_831
    np.testing.assert_array_equal(candidates.positions, np.arange(130_831))
    smiles = C.qm9_smiles()
    assert len(smiles) == 130_831 and smiles[:3] == ["C", "N", "O"]


def qm9_library_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tiny mass-anchored model, its mass statistics and QM9 conformer shards of 8 molecules."""
    monkeypatch.setattr(Q, "SHARD_SIZE", 8)
    model = write_checkpoint(tmp_path / "m.ckpt")
    return model, MassStats(90.0, 12.0), tmp_path / "cache"


def test_qm9_library_is_the_shared_conformer_cache(tmp_path, monkeypatch):
    model, stats, cache = qm9_library_setup(tmp_path, monkeypatch)
    positions = np.array([17, 3, 9, 4])  # shards 2, 0, 1, 0
    conformers = cache / LC.QM9_CONFORMER_DIR  # build/cache/qm9-conformers for the CLI default
    Q.load_positions(positions[:2], conformers, model.config.conformer_seed, progress=False)
    computed, seen = [], []  # the book computed shards 2 and 0: only shard 1 is left to compute
    real_job, real_embed = Q._geometry_job, LB.embed_structures
    monkeypatch.setattr(Q, "_geometry_job", lambda a: computed.append(a[0]) or real_job(a))
    monkeypatch.setattr(LB, "embed_structures", lambda m, s, *a, **k: seen.append(s)
                        or real_embed(m, s, *a, **k))
    lib = LC.build_library(model, C.QM9Candidates(positions), stats, cache, batch_size=3,
                           progress=False)
    assert computed == qm9_order()[8:16].tolist()
    s = Q.load_positions(positions, conformers, model.config.conformer_seed, progress=False)
    np.testing.assert_array_equal(seen[0].z, s.z)
    np.testing.assert_array_equal(seen[0].pos_ang, s.pos_ang)
    np.testing.assert_array_equal(seen[0].index, qm9_order()[positions])
    assert lib.smiles == s.smiles and lib.identity == s.identity
    np.testing.assert_array_equal(lib.mass_da, s.mass_da)
    assert lib.formula == [molecular_formula(mol_from_smiles(x)) for x in s.smiles]
    assert lib.skipped == {} and lib.graph_emb.shape == (4, model.config.latent_dim)
    # the naive twin: one molecule per batch
    single = embed_structures(model, s, stats, batch_size=1)
    torch.testing.assert_close(lib.graph_emb, single, atol=1e-5, rtol=1e-4)
    # the one cached geometry is the one candidate_geometry computes for that molecule
    src = load_qm9_source({int(s.index[0])})[int(s.index[0])]
    direct = Q.candidate_geometry(int(s.index[0]), src.smiles, src.numbers, src.positions_ang,
                                  model.config.conformer_seed)
    np.testing.assert_allclose(s.pos_ang[:s.atom_offsets[1]], direct[4])
    # a later build reads the library cache: no conformer, no embedding
    monkeypatch.setattr(LC, "load_positions", lambda *a, **k: pytest.fail("conformers again"))
    monkeypatch.setattr(LB, "embed_structures", lambda *a, **k: pytest.fail("embedded again"))
    again = LC.build_library(model, C.QM9Candidates(positions), stats, cache, progress=False)
    assert torch.equal(again.graph_emb, lib.graph_emb) and again.formula == lib.formula
    assert again.smiles == lib.smiles and again.identity == lib.identity
    np.testing.assert_array_equal(again.mass_da, lib.mass_da)
    with pytest.raises(pytest.fail.Exception, match="conformers again"):  # another set: new key
        LC.build_library(model, C.QM9Candidates(positions[:3]), stats, cache, progress=False)


def test_cli_qm9_candidates(files, capsys, monkeypatch):
    monkeypatch.setattr(Q, "SHARD_SIZE", 8)
    real = C.load_candidates
    monkeypatch.setattr(C, "load_candidates", lambda spec: C.QM9Candidates(np.arange(8))
                        if spec == "qm9" else real(spec))
    cache = files.root / "qm9_cache"
    args = ["identify", "--checkpoint", str(files.mass_ckpt), "--ir", str(files.ir),
            "--candidates", "qm9", "--cache-dir", str(cache), "--workers", "1",
            "--mass", "60", "--mass-tol", "100", "--top", "8", "--rerank", "0"]
    cli.main(args)
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert "library: 8 candidates from qm9" in out and len(rows) == 8
    s = Q.load_positions(np.arange(8), cache / "qm9-conformers", 0, progress=False)
    assert {r[2] for r in rows} == set(s.smiles)
    monkeypatch.setattr(LB, "embed_structures", lambda *a, **k: pytest.fail("embedded again"))
    cli.main(args)
    assert table_rows(capsys.readouterr().out) == rows


def test_mass_stats_roundtrip_and_missing(tmp_path):
    write_mass_stats(tmp_path / "run", SimpleNamespace(mass_mean=120.5, mass_std=7.25, key="k"))
    stats = mass_stats_for(tmp_path / "run" / "best.ckpt")
    assert stats == MassStats(120.5, 7.25)
    assert float(stats.standardize(127.75)) == pytest.approx(1.0)
    with pytest.raises(MassStatsError, match="mass_stats.json.*write_mass_stats"):
        mass_stats_for(tmp_path / "other" / "best.ckpt")


def hand_library(model: VibraCLIP, rows: torch.Tensor, stats: MassStats | None
                 ) -> LB.CandidateLibrary:
    n = len(rows)
    return LB.CandidateLibrary(
        smiles=[f"C{'C' * i}O" for i in range(n)], identity=[f"id{i}" for i in range(n)],
        mass_da=np.full(n, 46.07), formula=["C2H6O"] * n, graph_emb=rows, mass_stats=stats,
        model_digest=model_digest(model))


def synthetic(source: str, centres: list[float]) -> Spectrum:
    x = model_grid()
    return Spectrum(x, lorentzians(x, centres), "absorbance", source)


def test_identify_top1_ir_only_matches_naive_cosine():
    model = VibraCLIP(get_config("tiny")).eval()
    stats = MassStats(60.0, 10.0)
    ir = synthetic("q.csv", [1100.0, 1700.0, 3000.0])
    from vibraclip_core.data.spectra import spectrum_to_model_input
    with torch.no_grad():
        q = model.encode_ir(torch.from_numpy(spectrum_to_model_input(ir))[None],
                            stats.standardize(46.07))[0]
    rows = torch.randn(9, q.numel(), generator=torch.Generator().manual_seed(1))
    rows[5] = 3.0 * q  # same direction: cosine 1
    df = I.identify(model, hand_library(model, rows, stats), ir, None, mass_da=46.07, top=9)
    assert list(df.columns) == list(I.RESULT_COLUMNS)
    assert df["smiles"].iloc[0] == "C" + "C" * 5 + "O" and df["score"].iloc[0] == pytest.approx(1)
    naive = sorted((float(q @ r / (q.norm() * r.norm())), i) for i, r in enumerate(rows))[::-1]
    np.testing.assert_allclose(df["score"], [s for s, _ in naive], atol=1e-5)
    assert df["rank"].tolist() == list(range(1, 10))


def test_identify_top1_ir_raman_is_the_bisector():
    model = VibraCLIP(get_config("tiny", mass=False)).eval()
    ir, raman = synthetic("q_ir.csv", [900.0, 2900.0]), synthetic("q_ra.csv", [1500.0])
    from vibraclip_core.data.spectra import spectrum_to_model_input
    with torch.no_grad():
        q_ir = model.encode_ir(torch.from_numpy(spectrum_to_model_input(ir))[None])[0]
        q_ra = model.encode_raman(torch.from_numpy(spectrum_to_model_input(raman))[None])[0]
    rows = torch.randn(12, q_ir.numel(), generator=torch.Generator().manual_seed(2))
    # the unit bisector maximises (1 + cos a)(1 + cos b): log(1 + cos) is concave in the angle
    rows[7] = q_ir / q_ir.norm() + q_ra / q_ra.norm()
    rows[3] = q_ir  # best for IR alone, not for IR + Raman
    df = I.identify(model, hand_library(model, rows, None), ir, raman, top=3)
    assert df["smiles"].iloc[0] == "C" + "C" * 7 + "O"
    assert 0.0 <= df["score"].min() <= df["score"].max() <= 1.0
    with pytest.raises(C.IdentifyError, match="another checkpoint"):
        I.identify(VibraCLIP(get_config("tiny", mass=False, seed=1)),
                   hand_library(model, rows, None), ir, raman)


def test_build_library_skips_and_uses_cache(files, monkeypatch, tmp_path):
    model = write_checkpoint(tmp_path / "m.ckpt")
    stats = mass_stats_for(files.mass_ckpt)
    smiles = [s.split()[0] for s in LIBRARY]
    calls = []
    real = LB.featurize_many
    monkeypatch.setattr(LB, "featurize_many", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = LC.build_library(model, smiles, stats, tmp_path / "cache", batch_size=4)
    assert first.smiles == USABLE and first.graph_emb.shape == (6, model.config.latent_dim)
    assert first.skipped == {"unparseable_smiles": 1, "unknown_element": 1}
    assert first.formula[:2] == ["C2H6O", "C2H6O"] and first.identity[3] == "c1ccccc1"
    second = LC.build_library(model, smiles, stats, tmp_path / "cache")
    assert len(calls) == 1  # the second call read the cache
    assert second.smiles == first.smiles and second.skipped == first.skipped
    assert torch.equal(second.graph_emb, first.graph_emb)
    np.testing.assert_array_equal(second.mass_da, first.mass_da)
    # batching does not change embeddings: one molecule per batch gives the same rows
    graphs = LB.featurize_many(USABLE[:3], progress=False)[0]
    single = embed_structures(model, LB.pack_structures(graphs), stats, batch_size=1)
    torch.testing.assert_close(single, first.graph_emb[:3], atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # other weights: another cache entry
        model.ir_head.fc.bias.add_(1.0)
    LC.build_library(model, smiles, stats, tmp_path / "cache")
    assert len(calls) == 3


def test_cli_prints_ranked_table_and_skipped(files, capsys, monkeypatch):
    run_cli(files, "--mass", "46.07", "--mass-tol", "200")
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert len(rows) == 6 and [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert {r[2] for r in rows} == set(USABLE)
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert "skipped 2: unknown_element=1, unparseable_smiles=1" in out
    # the same checkpoint and library again: embeddings come from the cache
    monkeypatch.setattr(LB, "featurize_many", lambda *a, **k: pytest.fail("featurized again"))
    run_cli(files, "--mass", "46.07", "--mass-tol", "200")
    assert table_rows(capsys.readouterr().out) == rows


def test_cli_mass_filter(files, capsys, tmp_path):
    out_csv = tmp_path / "hits.csv"
    run_cli(files, "--mass", "46.07", "--out", str(out_csv))
    assert "kept 2 of 6 candidates" in capsys.readouterr().out
    df = pd.read_csv(out_csv)
    assert sorted(df["smiles"]) == ["CCO", "COC"]
    assert (df["mass_da"].sub(46.07).abs() <= 0.5).all()
    with pytest.raises(SystemExit) as exc:
        run_cli(files, "--mass", "300", "--mass-tol", "1")
    assert exc.value.code == 2 and "no candidate" in capsys.readouterr().err


def test_cli_formula_outside_the_model_or_isotopes(files, capsys, tmp_path):
    # issue 28: chlorobenzenes with --formula C6H5Cl were sent to --mass-tol; D2O to capitals
    chloro = tmp_path / "chloro.smi"
    chloro.write_text("Clc1ccccc1\nClc1ccccc1Cl\nCCO\n")
    for formula, said in (("C6H5Cl", "Cl (chlorine) is outside the elements the model knows "
                                     "(H, C, N, O, F)"),
                          ("D2O", "'D' is deuterium; isotopes are not supported")):
        with pytest.raises(SystemExit) as exc:
            run_cli(files, "--formula", formula, "--candidates", str(chloro))
        err = capsys.readouterr().err
        assert exc.value.code == 2 and said in err and "--mass-tol" not in err
    # a formula of the model's elements that no candidate has: no --mass-tol advice either
    with pytest.raises(SystemExit):
        run_cli(files, "--formula", "C9H8O")
    err = capsys.readouterr().err
    assert "no candidate" in err and "check --formula" in err and "--mass-tol" not in err


def test_cli_prints_that_stereoisomers_were_merged(files, capsys, tmp_path):
    lib = tmp_path / "ez.smi"
    lib.write_text("C/C=C/O\nC/C=C\\O\nCCO\n")
    run_cli(files, "--mass", "58", "--mass-tol", "20", "--candidates", str(lib))
    out = capsys.readouterr().out
    assert "(skipped 1: stereoisomer=1)" in out
    assert "note: 1 stereoisomer(s) merged" in out and "drops stereochemistry" in out


def test_cli_formula_filter(files, capsys, tmp_path):
    out_json = tmp_path / "hits.json"
    run_cli(files, "--formula", "OC2H6", "--raman", str(files.raman), "--out", str(out_json))
    assert "formula C2H6O kept 2 of 6" in capsys.readouterr().out
    records = json.loads(out_json.read_text())
    assert {r["smiles"] for r in records} == {"CCO", "COC"}
    assert {r["formula"] for r in records} == {"C2H6O"}


def test_cli_missing_mass_with_anchored_checkpoint(files, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(files)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "mass anchoring" in err and "--mass" in err
    assert "Traceback" not in err


def test_cli_raman_with_graph_ir_checkpoint(files, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(files, "--raman", str(files.raman), ckpt=files.ir_ckpt)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "graph_ir" in err and files.raman.name in err
    run_cli(files, ckpt=files.ir_ckpt)  # IR alone, no mass anchoring: needs no mass
    assert len(table_rows(capsys.readouterr().out)) == 6


def test_cli_corrupt_spectrum(files, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["identify", "--checkpoint", str(files.mass_ckpt), "--ir", str(files.bad),
                  "--mass", "46", "--candidates", str(files.library)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and files.bad.name in err and "Traceback" not in err


def test_cli_writes_csv_json_png(files, capsys, tmp_path):
    for suffix in ("csv", "json"):
        run_cli(files, "--mass", "46.07", "--mass-tol", "100", "--top", "4",
                "--out", str(tmp_path / f"r.{suffix}"), "--png", str(tmp_path / "grid.png"))
    capsys.readouterr()
    df = pd.read_csv(tmp_path / "r.csv")
    assert list(df.columns) == ["rank", "score", "smiles", "formula", "mass_da"] and len(df) == 4
    pd.testing.assert_frame_equal(df, pd.DataFrame(json.loads((tmp_path / "r.json").read_text())))
    png = (tmp_path / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    with pytest.raises(ValueError, match="r.xlsx"):
        report.write_results(df, tmp_path / "r.xlsx")


def test_cli_converts_measured_raman_for_the_laser_line(files, capsys, monkeypatch):
    from vibraclip_core.data.spectra import raman_intensity_factor

    seen = []
    real = I.identify

    def spy(model, library, ir, raman, **kw):
        seen.append(raman)
        return real(model, library, ir, raman, **kw)

    monkeypatch.setattr(I, "identify", spy)
    for extra in ([], ["--laser-nm", "785", "--temperature-k", "350"], ["--raman-activity"]):
        run_cli(files, "--raman", str(files.raman), "--mass", "46", *extra)
    raw = np.loadtxt(files.raman, delimiter=",", skiprows=1)
    default, red, as_given = seen
    assert np.allclose(as_given.intensity, raw[:, 1])  # --raman-activity: untouched
    assert np.allclose(default.intensity * raman_intensity_factor(raw[:, 0]), raw[:, 1])
    factor = raman_intensity_factor(raw[:, 0], laser_nm=785.0, temperature_k=350.0)
    assert np.allclose(red.intensity * factor, raw[:, 1])
    assert "785 nm" in " ".join(red.notes)
    # the file's 'intensity' column has no units: Raman intensity, not assumed absorbance
    assert any("Raman intensity" in n for n in default.notes)
    assert not any("absorbance" in n for n in default.notes)
    assert "shipped model" not in capsys.readouterr().out  # --checkpoint chose the model


def test_transmittance_csv_needs_ir_y_and_every_note_is_printed(files, tmp_path, capsys):
    """A %T export without a unit header is refused (exit 2, naming the file and --ir-y);
    declared with --ir-y it is converted, and the conversion note reaches stdout."""
    x = np.linspace(4000.0, 400.0, 1801)
    t = 100.0 * 10.0 ** -(0.05 + lorentzians(x, [1050.0, 1380.0, 2970.0, 3350.0]))
    csv = tmp_path / "ethanol_T.csv"
    csv.write_text("".join(f"{a:.3f},{b:.4f}\n" for a, b in zip(x, t)))
    with pytest.raises(SystemExit) as exc:
        run_cli(files, "--ir", str(csv), ckpt=files.ir_ckpt)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "ethanol_T.csv" in err and "--ir-y" in err
    run_cli(files, "--ir", str(csv), "--ir-y", "percent-transmittance", ckpt=files.ir_ckpt)
    out = capsys.readouterr().out
    assert any(ln.startswith(f"note: {csv}") and "transmittance" in ln.lower()
               for ln in out.splitlines())
    assert table_rows(out)


def test_rerank_puts_the_candidate_whose_simulated_spectrum_matches_first(files, tmp_path):
    model = write_checkpoint(tmp_path / "m.ckpt")
    stats = MassStats(90.0, 12.0)
    library = LC.build_library(model, USABLE, stats, files.cache, progress=False)
    # the query is acetone's own simulated IR, measured 2 % higher and on a sloped baseline
    sims = candidate_spectra(["CC(C)=O"], files.cache, workers=1, progress=False)
    x = model_grid()
    y = 0.1 + 1e-4 * x + sum(i * 100 / ((x - 1.02 * f) ** 2 + 100)
                             for f, i in zip(sims.freqs_cm1, sims.ir_km_mol) if f > 0)
    query = Spectrum(x, y, "absorbance", "acetone.csv")
    model_only = I.identify(model, library, query, None, mass_da=58.08, mass_tol_da=100, top=6)
    reranker = Reranker(MatchSettings(), float("inf"), 6, (-1.0, 2.0))
    df = I.identify(model, library, query, None, mass_da=58.08, mass_tol_da=100, top=4,
                    reranker=reranker, cache_dir=str(files.cache), workers=1, progress=False)
    assert df["smiles"].iloc[0] == "CC(C)=O" and len(df) == 4
    assert list(df.columns) == list(I.RERANK_COLUMNS)
    assert df["match"].iloc[0] > 0.95 and df["fused"].is_monotonic_decreasing
    assert set(df["smiles"]) <= set(model_only["smiles"])  # the same shortlist, re-ordered
    top_two = np.sort(df["fused"].to_numpy())[::-1][:2]
    assert df.attrs["confidence"] == pytest.approx(
        float(1 / (1 + np.exp(1.0 - 2.0 * (top_two[0] - top_two[1])))), rel=1e-6)


def test_cli_reranks_with_the_shipped_choice(files, capsys, tmp_path):
    png = tmp_path / "overlay.png"
    run_cli(files, "--mass", "46.07", "--mass-tol", "200", "--rerank", "3", "--top", "5",
            "--png", str(png))
    out = capsys.readouterr().out
    assert "re-ranked: the model's top 3 by fused score" in out
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["rank", "fused"])
    rows = [ln.split() for ln in lines[head + 1:head + 6]]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    fused = [float(r[1]) for r in rows[:3]]
    assert fused == sorted(fused, reverse=True)
    assert len(rows[3]) == 5  # below the shortlist: no match or fused score
    # the shipped re-ranking either trusts rank 1 to a probability or says nothing fits
    assert re.search(r"(confidence that rank 1 is right|no candidate fits: .*probability that "
                     r"rank 1 is right): \d\.\d\d", out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as exc:
        run_cli(files, "--mass", "46.07", "--rerank", "-1")
    assert exc.value.code == 2 and "--rerank -1" in capsys.readouterr().err


def test_fusing_every_candidate_simulates_only_the_model_top(files, tmp_path, monkeypatch):
    """Depth ALL_CANDIDATES fuses every admissible candidate: those with sticks on disk are
    matched for free, of the others only the model's top SIMULATE_TOP are simulated, and the
    rest count a neutral match. A re-ranking that can say "no candidate fits" says it for a
    query whose best match is poor and not for acetone's own spectrum."""
    import vibraclip_core.app.identify as ident
    from vibraclip_core.retrieval.candidate_spectra import NOT_SIMULATED

    model = write_checkpoint(tmp_path / "m.ckpt")
    stats = MassStats(90.0, 12.0)
    library = LC.build_library(model, USABLE, stats, files.cache, progress=False)
    cache = tmp_path / "fresh-cache"  # nothing on disk but the embedded shards
    sims = candidate_spectra(["CC(C)=O"], files.cache, workers=1, progress=False)
    x = model_grid()
    y = sum(i * 100 / ((x - f) ** 2 + 100) for f, i in zip(sims.freqs_cm1, sims.ir_km_mol)
            if f > 0)
    query = Spectrum(x, y, "absorbance", "acetone.csv")
    calls = []
    real = ident.candidate_spectra

    def spy(smiles, *a, **k):
        calls.append((list(smiles), k.get("simulate")))
        return real(smiles, *a, **k)

    monkeypatch.setattr(ident, "candidate_spectra", spy)
    monkeypatch.setattr(ident, "SIMULATE_TOP", 0)  # simulate nothing: only what is free
    reranker = Reranker(MatchSettings(), 4.0, ALL_CANDIDATES, (-3.0, 1.0, 4.0, 0.0),
                        present_coef=(-20.0, 0.0, 25.0, 0.0), present_threshold=0.5)
    df = ident.identify(model, library, query, None, mass_da=58.08, mass_tol_da=100, top=3,
                        reranker=reranker, cache_dir=str(cache), workers=1, progress=False)
    n_ok = df.attrs["n_candidates"]
    assert df.attrs["n_reranked"] == n_ok and len(calls[0][0]) == n_ok
    assert calls[0][1] == 0
    sims_used, _ = df.attrs["spectra"]
    free = [o != NOT_SIMULATED for o in sims_used.origin]
    assert df.attrs["not_simulated"] == n_ok - sum(free) and df.attrs["n_simulated"] == 0
    if sims_used.origin[list(df["smiles"]).index("CC(C)=O")] != NOT_SIMULATED:
        assert df["smiles"].iloc[0] == "CC(C)=O"
        assert df.attrs["none_fits"] is False
    # one band where none of these molecules has a fundamental
    flat = Spectrum(x, 0.1 + 100 / ((x - 1950.0) ** 2 + 100), "absorbance", "lone-band.csv")
    poor = ident.identify(model, library, flat, None, mass_da=58.08, mass_tol_da=100, top=3,
                          reranker=reranker, cache_dir=str(cache), workers=1, progress=False)
    assert poor["match"].iloc[0] < 0.8
    assert poor.attrs["none_fits"] is True
    assert poor.attrs["confidence"] < df.attrs["confidence"]
    # a shortlist asked for (--rerank N) is simulated whole
    short = Reranker(MatchSettings(), 4.0, 3, (-1.0, 2.0))
    ident.identify(model, library, query, None, mass_da=58.08, mass_tol_da=100, top=3,
                   reranker=short, cache_dir=str(cache), workers=1, progress=False)
    assert calls[-1][1] is None and len(calls[-1][0]) == 3
