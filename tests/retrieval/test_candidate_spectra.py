"""Simulated spectra of a candidate set: embedded sticks by identity, computed otherwise, cached
per molecule (failures too), shared between calls, damaged files recomputed."""

from __future__ import annotations

import numpy as np
import pytest

from vibraclip_core.data.datasets import load_sticks
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.retrieval import candidate_spectra as CS


def test_embedded_computed_failed_and_cached(tiny_shards, tmp_path, monkeypatch):
    embedded = (tiny_shards,)
    sticks = load_sticks(tiny_shards).ok()
    row = list(sticks.smiles).index("CC=O")
    # 'OC(C)' is ethanol written another way: found in the shards by identity; NCC is computed;
    # the methyl radical is an open shell: a failure with its reason
    smiles = ["OC(C)", "NCC", "[CH3]", "CC=O"]
    out = CS.candidate_spectra(smiles, tmp_path, workers=2, progress=False,
                               embedded_dirs=embedded)
    assert out.identity == [canonical_identity(s) for s in smiles]
    assert out.origin == [CS.FROM_EMBEDDED, CS.COMPUTED, CS.COMPUTED, CS.FROM_EMBEDDED]
    assert out.status[:2] == ["ok", "ok"] and out.status[2] == "open_shell"
    assert out.failures() == {"open_shell": 1} and out.ok.tolist() == [True, True, False, True]
    f, ir, _ = sticks.sticks(row)
    np.testing.assert_array_equal(out.freqs_cm1[out.offsets[3]:out.offsets[4]], f)
    np.testing.assert_array_equal(out.ir_km_mol[out.offsets[3]:out.offsets[4]], ir)
    n_nh = out.offsets[2] - out.offsets[1]
    assert n_nh == 3 * 10 - 6 and out.offsets[3] == out.offsets[2]  # NCC: 10 atoms
    # a second call (another library order) reads every molecule, the failure included, from
    # the cache: nothing is simulated and the embedded shards are not read
    monkeypatch.setattr(CS, "_simulate_smiles", lambda *a: pytest.fail("simulated again"))
    monkeypatch.setattr(CS, "embedded_sticks", lambda *a: pytest.fail("read the shards"))
    again = CS.candidate_spectra(smiles[::-1], tmp_path, workers=1, progress=False,
                                 embedded_dirs=embedded)
    assert again.origin == [CS.FROM_CACHE] * 4 and again.status == out.status[::-1]
    np.testing.assert_array_equal(again.freqs_cm1[again.offsets[2]:again.offsets[3]],
                                  out.freqs_cm1[out.offsets[1]:out.offsets[2]])


def test_a_damaged_cache_file_is_recomputed(tmp_path, caplog):
    settings = CS.SimulatorSettings()
    first = CS.candidate_spectra(["N#N"], tmp_path, workers=1, progress=False, embedded_dirs=())
    path = CS.cache_file(tmp_path, "N#N", settings, 0)
    path.write_bytes(path.read_bytes()[:40])  # truncated
    again = CS.candidate_spectra(["N#N"], tmp_path, workers=1, progress=False, embedded_dirs=())
    assert again.origin == [CS.COMPUTED] and "damaged" in caplog.text
    np.testing.assert_allclose(again.freqs_cm1, first.freqs_cm1, rtol=1e-5)
