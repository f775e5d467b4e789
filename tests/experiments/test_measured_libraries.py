"""The candidate libraries measured spectra are ranked against, and their filters
(measured_libraries)."""

import dataclasses

import numpy as np
import pytest
import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import qm9_candidates as Q
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.spectra import Spectrum
from vibraclip_core.experiments import measured_libraries as ML
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.retrieval.library import CandidateLibrary


def _library(formulas, masses, ids=None):
    n = len(formulas)
    emb = torch.nn.functional.normalize(torch.eye(n)[:, :n] + 0.01, dim=1)
    ids = ids or [f"m{i}" for i in range(n)]
    return CandidateLibrary(ids, ids, np.array(masses, dtype=np.float32), list(formulas),
                            graph_emb=emb)


def test_filters_keep_only_admissible_candidates():
    lib = _library(["C2H6O", "C2H6O", "C3H8", "C2H6O"], [46.07, 46.07, 44.10, 46.07])
    # query 0 looks most like candidate 2 but is m0; query 1 looks like m1 and is m1
    q = torch.stack([lib.graph_emb[2] + 0.2 * lib.graph_emb[0], lib.graph_emb[1]])
    ids, mass = ["m0", "m1"], torch.tensor([46.07, 46.07])
    none = ML.filtered_ranks(q, ids, mass, ["C2H6O", "C2H6O"], lib, "none")
    formula = ML.filtered_ranks(q, ids, mass, ["C2H6O", "C2H6O"], lib, "formula")
    by_mass = ML.filtered_ranks(q, ids, mass, ["C2H6O", "C2H6O"], lib, "mass", mass_tol_da=0.5)
    assert none.tolist() == [1, 0]  # 0-based: m2 outranks m0
    assert formula.tolist() == [0, 0] and by_mass.tolist() == [0, 0]
    with pytest.raises(ValueError, match="filter 'isomer'"):
        ML.filtered_ranks(q, ids, mass, ["C2H6O"] * 2, lib, "isomer")


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    from vibraclip_core.experiments.realign import measured_data

    build = tmp_path_factory.mktemp("transfer")
    cfg = get_config("tiny", n_molecules=60, build_dir=str(build))
    qm9 = prepare(cfg)
    # placeholder spectra (a ramp: a constant one is refused as input)
    recs = [MeasuredIR(f"{n}.jdx", n, s, "", Spectrum(np.array([500.0, 4000.0]),
                                                      np.array([1.0, 2.0]), "absorbance",
                                                      f"{n}.jdx", []))
            for n, s in (("acetone", "CC(C)=O"), ("propanal", "CCC=O"), ("acetone2", "CC(C)=O"))]
    from vibraclip_core.data.molecules import canonical_identity

    recs = [dataclasses.replace(r, identity=canonical_identity(r.smiles)) for r in recs]
    measured, _ = measured_data(recs)
    with pytest.MonkeyPatch.context() as mp:  # conformers of ~100 distractors, not 1,024
        mp.setattr(Q, "SHARD_SIZE", 32)
        return measured, ML.measured_libraries(qm9, measured, 80, str(build), 0, 1)


def test_measured_libraries_hold_each_measured_molecule_once(libraries):
    measured, libs = libraries
    truth = set(measured.identity)
    for name, lib in libs.items():
        for ident in truth:
            assert lib.identity.count(ident) == 1, (name, ident)
        assert lib.graph_emb is None and lib.identity[:2] == libs[ML.LIB_MEASURED].identity
    assert len(libs[ML.LIB_DISTRACTORS]) == 80
    # distractors: the pretraining data's held-out test molecules first (their GFN2 spectra are
    # embedded), then QM9 molecules outside the data for the rest
    qm9, test_rows = libs[ML.LIB_DISTRACTORS].parts[1]
    assert set(test_rows.tolist()) == set(qm9.splits["test"].tolist())
    assert len(libs[ML.LIB_DISTRACTORS].parts) == 3
    isomers = libs[ML.LIB_ISOMERS]
    assert set(isomers.formula) == {"C3H6O"}  # acetone's and propanal's formula
    assert set(ML.query_formulas(isomers.parts[1][0])) == {"C3H6O"}  # RDKit's, from SMILES
    assert len(isomers) >= 4  # QM9 holds more C3H6O isomers than the two measured ones


def test_measured_ranks_use_each_librarys_filters(libraries, tmp_path):
    from vibraclip_core.model.vibraclip import VibraCLIP

    measured, libs = libraries
    torch.manual_seed(0)
    model = VibraCLIP(get_config("tiny", mass=False)).eval()
    embedded = {n: lib.embed(model, str(tmp_path)) for n, lib in libs.items()}
    rows = torch.arange(len(measured))
    ranks = ML.measured_ranks(model, measured, measured.ir, rows, embedded)
    assert set(ranks) == {(n, how) for n, hows in ML.LIBRARY_FILTERS.items() for how in hows}
    with torch.no_grad():
        q = model.encode_ir(measured.ir)
    for (name, how), r in ranks.items():  # naive twin: a full cosine matrix, one query at a time
        lib = embedded[name]
        s = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(
            lib.graph_emb, dim=1).T
        for i in range(len(measured)):
            ok = [j for j in range(len(lib)) if how != "mass"
                  or abs(float(measured.mass_da[i]) - float(lib.mass_da[j])) <= 0.5]
            ok = [j for j in ok if how != "formula" or lib.formula[j] == "C3H6O"]
            truth = max(float(s[i, j]) for j in ok if lib.identity[j] == measured.identity[i])
            assert int(r[i]) == sum(float(s[i, j]) > truth for j in ok
                                    if lib.identity[j] != measured.identity[i]), (name, how, i)
