import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit.Chem import Descriptors
from safetensors.torch import load_file

from vibraclip_core.app import cli
from vibraclip_core.app.shipped import (MODELS_DIR, WEIGHTS_FILE, ShippedModelError,
                                        check_integrity, export_model, load_shipped_model, manifest)
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import load_sticks, prepare
from vibraclip_core.data.molecules import canonical_identity, mol_from_smiles
from vibraclip_core.data.spectra import broaden_sticks, fine_grid
from vibraclip_core.training.train import load_model, train


def test_the_shipped_model_loads_with_this_code_and_is_intact():
    # fails when a change to the model's code no longer fits the weights in models/
    model, stats = load_shipped_model()
    assert not model.training
    assert check_integrity() == []
    assert (MODELS_DIR / WEIGHTS_FILE).stat().st_size <= 15 * 2**20
    info = manifest()
    assert info["command"].startswith("vibraclip train") and info["commit"] != "unknown"
    assert (stats is not None) == model.config.mass
    assert (MODELS_DIR / "MODEL_CARD.md").read_text().count("|") > 20  # holds its tables


def _write_ir_csv(path, freqs, ints):
    y = broaden_sticks(freqs, ints, np.array([0, len(freqs)]), 15.0, fine_grid())[0]
    path.write_text("wavenumber,absorbance\n"
                    + "\n".join(f"{x:.1f},{v:.6g}" for x, v in zip(fine_grid(), y)))
    return path


def test_identify_without_checkpoint_uses_the_shipped_model(tmp_path, capsys):
    # a query the test writes itself: GFN2 sticks of an embedded molecule, broadened to a CSV
    sticks = load_sticks(get_config("cpu").data_path).ok()
    rng = np.random.default_rng(0)
    rows = rng.choice(len(sticks), 40, replace=False)
    truth = int(rows[0])
    f, ir, _ = sticks.sticks(truth)
    query = _write_ir_csv(tmp_path / "query.csv", f, ir)
    (tmp_path / "lib.smi").write_text("\n".join(sticks.smiles[int(r)] for r in rows))
    cli.main(["identify", "--ir", str(query), "--candidates", str(tmp_path / "lib.smi"),
              "--cache-dir", str(tmp_path / "cache"), "--workers", "1", "--top", "5",
              "--out", str(tmp_path / "hits.csv")] + _mass_args(sticks.smiles[truth]))
    out = capsys.readouterr().out
    assert "shipped model" in out
    hits = [canonical_identity(s) for s in pd.read_csv(tmp_path / "hits.csv")["smiles"]]
    assert canonical_identity(sticks.smiles[truth]) in hits[:3]


def _mass_args(smiles):
    model, _ = load_shipped_model()
    return ["--mass", f"{Descriptors.MolWt(mol_from_smiles(smiles)):.3f}", "--mass-tol", "50"] \
        if model.config.mass else []


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    build = tmp_path_factory.mktemp("shipped")
    cfg = get_config("tiny", n_molecules=60, max_epochs=1, batch_size=16, build_dir=str(build))
    data = prepare(cfg)
    return cfg, data, train(cfg, data, trainer_kwargs={"enable_progress_bar": False})


def test_export_round_trip_keeps_the_embeddings(tiny_run, tmp_path):
    cfg, data, run = tiny_run
    weights = export_model(run.best_checkpoint, tmp_path / "m", {"command": "test"})
    saved = load_file(weights)
    assert all(v.dtype == torch.float16 for v in saved.values() if v.is_floating_point())
    shipped, stats = load_shipped_model(tmp_path / "m")
    original = load_model(run.best_checkpoint)
    x = data.ir[:8]
    mass = stats.standardize(data.mass_da[:8].numpy()) if cfg.mass else None
    with torch.no_grad():
        a, b = original.encode_ir(x, mass), shipped.encode_ir(x, mass)
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999
    assert stats.mean_da == pytest.approx(data.mass_mean, rel=1e-6)
    assert manifest(tmp_path / "m")["command"] == "test"


def test_broken_shipped_models_are_reported_by_file(tiny_run, tmp_path):
    _, _, run = tiny_run
    export_model(run.best_checkpoint, tmp_path / "m")
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "m", bad)
    (bad / WEIGHTS_FILE).write_bytes((bad / WEIGHTS_FILE).read_bytes()[:100])
    with pytest.raises(ShippedModelError, match="vibraclip.safetensors"):
        load_shipped_model(bad)
    assert check_integrity(bad) == [WEIGHTS_FILE]
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "m", other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["latent_dim"] += 8
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ShippedModelError, match="does not fit this code"):
        load_shipped_model(other)
    with pytest.raises(ShippedModelError, match="missing"):
        load_shipped_model(tmp_path / "nothing")


def test_a_reranking_chosen_for_other_weights_is_refused_by_name(tiny_run, tmp_path):
    from vibraclip_core.app.shipped import RERANK_WEIGHTS_KEY, shipped_reranker, weights_sha256
    from vibraclip_core.retrieval.rerank import RERANK_FILE, Reranker
    from vibraclip_core.retrieval.spectral_match import MatchSettings

    _, _, run = tiny_run
    folder = tmp_path / "m"
    export_model(run.best_checkpoint, folder)
    sha = weights_sha256(folder)
    assert sha == manifest(folder)["sha256"][WEIGHTS_FILE] and len(sha) == 64
    assert weights_sha256(tmp_path / "nothing") is None
    reranker = Reranker(MatchSettings(), 2.0, 7, (-1.0, 2.0))
    reranker.save(folder / RERANK_FILE)  # no weights named (older files): taken as it is
    assert shipped_reranker(folder=folder).depth == 7
    reranker.provenance[RERANK_WEIGHTS_KEY] = sha
    reranker.save(folder / RERANK_FILE)
    assert shipped_reranker(depth=3, folder=folder).depth == 3
    reranker.provenance[RERANK_WEIGHTS_KEY] = "0" * 64
    reranker.save(folder / RERANK_FILE)
    with pytest.raises(ShippedModelError, match=r"chosen for the weights 000000000000…, but .* "
                       rf"holds {sha[:12]}….*calibrate-rerank --out"):
        shipped_reranker(folder=folder)
    assert shipped_reranker(depth=0, folder=folder) is None  # the model alone needs none
