"""The numbers on an exported model's card: simulated test split and measured IR, zero-shot.

`vibraclip export-model` writes them beside the weights (`shipped.write_model_card`), measured on
the weights as shipped: the test split with GFN2, B3LYP-frequency and GFN1-xTB queries
(`transfer.cross_theory_table`) and measured IR spectra against the three libraries of Chapter 6
(`measured_libraries`): the model alone, the simulated-spectrum match alone and the model's
shortlist re-ranked as `vibraclip identify` does by default (`measured_rerank`), beside each
library's chance level.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from vibraclip_core.app.shipped import manifest
from vibraclip_core.data.augment import stick_source
from vibraclip_core.data.datasets import load_sticks, prepare
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.second_theory import GFN1_DIR
from vibraclip_core.experiments import realign as RA
from vibraclip_core.experiments.measured_libraries import (LIB_DISTRACTORS, measured_libraries,
                                                           measured_ranks)
from vibraclip_core.experiments.measured_rerank import (MATCH_ALONE, PAIRED_KEYS, chance_levels,
                                                        library_matches, open_set_rates,
                                                        paired_differences, reranked_levers,
                                                        seen_in_pretraining)
from vibraclip_core.experiments.transfer import (cross_theory_table, lever_table, theory_display,
                                                 training_spectra_text)
from vibraclip_core.measured.experimental import fetch_jcamp_spectra, load_measured_ir
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.embedding import EmbeddingCache
from vibraclip_core.retrieval.rerank import (ALL_CANDIDATES, Reranker,
                                             expected_calibration_error, reliability)

FUSED = "fused (identify's default)"


def _fused_candidates(reranker: Reranker) -> str:
    return ("every admissible candidate" if reranker.depth <= ALL_CANDIDATES
            else f"the model's top {reranker.depth}")


def model_card(model: VibraCLIP, stats: MassStats | None, folder: str | Path, build_dir: str,
               experimental_dir: str | Path | None = None, reranker: Reranker | None = None
               ) -> tuple[dict[str, str], dict[str, str]]:
    """(provenance, {title: Markdown table}) of an exported model for its card: the simulated test
    split (same and cross theory) and measured IR zero-shot at the three libraries, with
    `reranker` also the match alone and the re-ranked shortlist."""
    config = model.config
    info = manifest(folder)
    data = prepare(config)
    n_params = sum(p.numel() for p in model.parameters())
    provenance = {
        "command": f"`{info.get('command') or 'not recorded'}`",
        "commit": f"`{info['commit']}`", "run folder": f"`{info.get('run', '')}`",
        "data key": f"`{data.key}` ({len(data)} molecules)",
        "profile": config.profile, "loss": config.loss, "mass anchoring": str(config.mass),
        "augmentation": (f"{', '.join(config.augment)} (strength {config.augment_strength:g})"
                         if config.augment else "none"),
        "training spectra": training_spectra_text(config),
        "parameters": f"{n_params:,}",
        "weights sha256": f"`{info['sha256']['vibraclip.safetensors']}`"}
    cross = cross_theory_table({"shipped model": model}, data, stick_source(config.data_path),
                               config.fwhm_cm1, build_dir, seed=config.seed,
                               other=load_sticks(GFN1_DIR))
    sim = theory_display(cross).loc["shipped model"].reset_index()
    records, _ = load_measured_ir(experimental_dir or fetch_jcamp_spectra())
    measured, _ = RA.measured_data(records, seed=config.conformer_seed)
    measured = dataclasses.replace(measured, mass_mean=stats.mean_da, mass_std=stats.std_da) \
        if stats is not None else measured
    libraries = measured_libraries(data, measured, config.measured_library_size, build_dir,
                                   config.conformer_seed, config.workers, seed=config.seed)
    cache = EmbeddingCache()  # the measured molecules are part of all three libraries
    libs = {n: lib.embed(model, build_dir, cache=cache) for n, lib in libraries.items()}
    ranks = {"zero-shot": measured_ranks(model, measured, measured.ir,
                                         torch.arange(len(measured)), libs, config.mass_tol_da)}
    tables: dict[str, str] = {}
    if reranker is not None:
        matches = library_matches(records, measured, libraries, reranker,
                                  Path(build_dir) / "cache", config.workers)
        extra, confidence = reranked_levers({"model": model}, measured, {"model": libs}, matches,
                                            reranker, config.mass_tol_da)
        fused = [k for k in extra if k != MATCH_ALONE][0]
        ranks = {"model alone": ranks["zero-shot"], MATCH_ALONE: extra[MATCH_ALONE],
                 FUSED: extra[fused]}
        st = reranker.settings
        provenance["re-ranking"] = (
            f"{_fused_candidates(reranker)} ordered by z(model) + {reranker.weight:g} z(match "
            f"with the candidate's GFN2-xTB spectrum; baseline {st.baseline}, FWHM "
            f"{st.fwhm_cm1:g} cm⁻¹, {st.compression}, "
            f"alignment {st.alignment}); chosen on pseudo-measured validation queries of other "
            "theories (`models/rerank.json`, `data/pseudo_measured.md`)")
        groups = np.asarray(measured.identity)
        tables["Paired differences on the same measured queries (points; 95 % intervals by "
               "bootstrap over molecules)"] = paired_differences(
            ranks, FUSED, ["model alone", MATCH_ALONE], PAIRED_KEYS, groups,
            config.seed).reset_index().to_markdown(index=False)
        key = f"{fused}|{LIB_DISTRACTORS}|none"
        correct = ranks[FUSED][(LIB_DISTRACTORS, "none")].numpy() == 0
        rel = reliability(confidence[key], correct, bins=4)
        tables[f"Reliability of the confidence on measured queries ({LIB_DISTRACTORS}, no "
               f"filter; ECE {expected_calibration_error(confidence[key], correct):.3f}; "
               "reported, never fitted)"] = rel.round(3).to_markdown(index=False)
        none = open_set_rates(reranker, confidence, key, correct)["'no candidate fits' %"]
        if none.notna().all():
            provenance["'no candidate fits' on measured queries"] = (
                f"{none.iloc[0]:.1f} % of queries whose molecule is in the library, "
                f"{none.iloc[1]:.1f} % with it removed ({LIB_DISTRACTORS})")
    seen = seen_in_pretraining(measured, data)
    provenance["measured molecules in the training data"] = (
        f"{int(seen.sum())} of {len(seen)} spectra (the rows below include them)")
    meas = lever_table(ranks, seed=config.seed).T.reset_index()
    chance = chance_levels(measured, libraries, config.mass_tol_da).reset_index()
    sizes = ", ".join(f"{n}: {len(lib)}" for n, lib in libraries.items())
    return provenance, {
        f"Simulated test split ({len(data.splits['test'])} candidates)":
            sim.to_markdown(index=False),
        f"Measured gas-phase IR, zero-shot ({len(measured)} spectra; candidates: {sizes})":
            meas.to_markdown(index=False),
        **tables,
        "Chance level of each library (random order of each query's admissible candidates)":
            chance.to_markdown(index=False)}
