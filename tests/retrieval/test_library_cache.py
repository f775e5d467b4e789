"""The on-disk candidate library cache of `vibraclip identify` (library_cache): hits, rebuilds
when what the embeddings depend on changes, damaged files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vibraclip_core.app import cli
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.mass import MassStats
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import library as LB
from vibraclip_core.retrieval import library_cache as LC

USABLE = ["CCO", "COC", "CC(C)=O", "c1ccccc1", "CC#N", "C=C", "OCCCCO"]


def tiny_model(**overrides) -> VibraCLIP:
    """The same random weights for every config override (a mass-anchored tiny model)."""
    torch.manual_seed(0)
    return VibraCLIP(get_config("tiny", **overrides),
                     graph_output_initializer="glorot_orthogonal").eval()


def test_library_cache_is_rebuilt_when_the_conformer_seed_or_mass_statistics_change(
        tmp_path, monkeypatch):
    seeds = []
    real = LB.featurize_many
    monkeypatch.setattr(LB, "featurize_many",
                        lambda *a, **k: seeds.append(k["seed"]) or real(*a, **k))
    cache, stats = tmp_path / "cache", MassStats(90.0, 12.0)
    first = LC.build_library(tiny_model(), USABLE, stats, cache, progress=False)
    assert seeds == [0]
    # nothing changed (another model object with the same weights): read from the cache
    hit = LC.build_library(tiny_model(), USABLE, stats, cache, progress=False)
    assert seeds == [0] and torch.equal(hit.graph_emb, first.graph_emb)
    # another conformer seed: new geometries, so the library is rebuilt with that seed (not 1:
    # RDKit's ETKDG gives seeds 0 and 1 the same conformers)
    other_seed = LC.build_library(tiny_model(conformer_seed=7), USABLE, stats, cache,
                                  progress=False)
    assert seeds == [0, 7]
    assert not torch.allclose(other_seed.graph_emb, first.graph_emb)
    # other training mass statistics: the candidates' mass input changes, so it is rebuilt too
    other_stats = LC.build_library(tiny_model(), USABLE, MassStats(91.0, 12.0), cache,
                                   progress=False)
    assert seeds == [0, 7, 0] and other_stats.mass_stats == MassStats(91.0, 12.0)
    assert not torch.allclose(other_stats.graph_emb, first.graph_emb)
    # each of the three is a cache entry of its own, and each is a hit now
    assert len(list(cache.glob("library-*.safetensors"))) == 3
    again = LC.build_library(tiny_model(conformer_seed=7), USABLE, stats, cache, progress=False)
    assert seeds == [0, 7, 0] and torch.equal(again.graph_emb, other_seed.graph_emb)
    again = LC.build_library(tiny_model(), USABLE, MassStats(91.0, 12.0), cache, progress=False)
    assert seeds == [0, 7, 0] and torch.equal(again.graph_emb, other_stats.graph_emb)


def test_library_cache_key_names_each_input():
    digest, smiles, stats = "d" * 64, ["CCO", "CC"], MassStats(90.0, 12.0)
    base = LC.library_path("c", digest, smiles, 0, stats)
    assert base == LC.library_path("c", digest, list(smiles), 0, MassStats(90.0, 12.0))
    changed = [LC.library_path("c", "e" * 64, smiles, 0, stats),
               LC.library_path("c", digest, smiles[::-1], 0, stats),
               LC.library_path("c", digest, smiles, 1, stats),
               LC.library_path("c", digest, smiles, 0, MassStats(90.0, 12.5)),
               LC.library_path("c", digest, smiles, 0, None)]
    assert len({base, *changed}) == 6


def test_damaged_library_cache_is_rebuilt_not_used(tmp_path, monkeypatch, caplog):
    model = tiny_model()
    stats = MassStats(90.0, 12.0)
    cache = tmp_path / "cache"
    calls = []
    real = LB.featurize_many
    monkeypatch.setattr(LB, "featurize_many", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = LC.build_library(model, USABLE[:3], stats, cache, progress=False)
    tensors = sorted(cache.glob("library-*.safetensors"))
    meta = sorted(cache.glob("library-*.json"))
    assert len(tensors) == len(meta) == 1 and not list(cache.glob("*.tmp"))
    for damaged, keep in ((tensors[0], 0.5), (meta[0], 0.5), (tensors[0], 0.0)):
        data = damaged.read_bytes()
        damaged.write_bytes(data[:int(len(data) * keep)])
        caplog.clear()
        n_calls = len(calls)
        rebuilt = LC.build_library(model, USABLE[:3], stats, cache, progress=False)
        assert len(calls) == n_calls + 1, f"truncated {damaged.name} was used"
        assert "damaged candidate library cache" in caplog.text and tensors[0].name in caplog.text
        torch.testing.assert_close(rebuilt.graph_emb, first.graph_emb)
        assert rebuilt.smiles == first.smiles
    # the same size, the last embedding overwritten with NaN bytes in place
    data = tensors[0].read_bytes()
    tensors[0].write_bytes(data[:-8] + b"\xff" * 8)
    caplog.clear()
    rebuilt = LC.build_library(model, USABLE[:3], stats, cache, progress=False)
    assert "damaged candidate library cache" in caplog.text and "NaN" in caplog.text
    torch.testing.assert_close(rebuilt.graph_emb, first.graph_emb)
    # a write that dies half-way leaves nothing behind
    for path in tensors + meta:
        path.unlink()

    def dies(tensors_dict, path):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(LC, "save_file", dies)
    with pytest.raises(OSError, match="disk full"):
        LC.build_library(model, USABLE[:3], stats, cache, progress=False)
    assert list(cache.iterdir()) == []


def test_identify_rebuilds_a_truncated_library_cache(tmp_path, capsys, caplog):
    cfg = get_config("tiny", mass=False)
    torch.manual_seed(0)
    model = VibraCLIP(cfg, graph_output_initializer="glorot_orthogonal")
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"config": cfg.to_dict()}}, ckpt)
    (tmp_path / "cands.smi").write_text("\n".join(USABLE[:3]) + "\n")
    ir = tmp_path / "q.csv"
    ir.write_text("wavenumber,absorbance\n" + "\n".join(
        f"{x},{1.0 / (1 + ((x - 1700) / 20) ** 2):.6f}" for x in range(500, 4001, 2)))
    argv = ["identify", "--checkpoint", str(ckpt), "--ir", str(ir), "--candidates",
            str(tmp_path / "cands.smi"), "--cache-dir", str(tmp_path / "cache"), "--workers", "1"]
    cli.main(argv)
    first = capsys.readouterr().out
    (cached,) = (tmp_path / "cache").glob("library-*.safetensors")
    cached.write_bytes(cached.read_bytes()[:40])
    caplog.clear()
    cli.main(argv)
    assert capsys.readouterr().out == first
    assert "damaged candidate library cache" in caplog.text and cached.name in caplog.text
    assert cached.stat().st_size > 40  # rebuilt and saved again
