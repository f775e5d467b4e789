"""The numbers on an exported model's card: simulated test split and measured IR, zero-shot.

`vibraclip export-model` writes them beside the weights (`shipped.write_model_card`), measured on
the weights as shipped: the test split with GFN2 and B3LYP-frequency queries
(`transfer.cross_theory_table`) and measured IR spectra against the three libraries of Chapter 6
(`measured_libraries`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from . import realign as RA
from .augment import stick_source
from .datasets import prepare
from .embedding import EmbeddingCache
from .experimental import fetch_jcamp_spectra, load_measured_ir
from .mass import MassStats
from .measured_libraries import measured_libraries, measured_ranks
from .model import VibraCLIP
from .shipped import manifest
from .transfer import cross_theory_table, lever_table


def model_card(model: VibraCLIP, stats: MassStats | None, folder: str | Path, build_dir: str,
               experimental_dir: str | Path | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(provenance, {title: Markdown table}) of an exported model for its card: the simulated test
    split (same and cross theory) and measured IR zero-shot at the three libraries."""
    config = model.config
    info = manifest(folder)
    data = prepare(config)
    n_params = sum(p.numel() for p in model.parameters())
    provenance = {
        "command": f"`{info.get('command') or 'not recorded'}`",
        "commit": f"`{info['commit']}`", "run folder": f"`{info.get('run', '')}`",
        "data key": f"`{data.key}` ({len(data)} molecules)",
        "profile": config.profile, "loss": config.loss, "mass anchoring": str(config.mass),
        "augmentation": ", ".join(config.augment) or "none",
        "parameters": f"{n_params:,}",
        "weights sha256": f"`{info['sha256']['vibraclip.safetensors']}`"}
    cross = cross_theory_table({"shipped model": model}, data, stick_source(config.data_path),
                               config.fwhm_cm1, build_dir, seed=config.seed)
    sim = cross.T.reset_index().rename(columns={"shipped model": "%"})
    records, _ = load_measured_ir(experimental_dir or fetch_jcamp_spectra())
    measured, _ = RA.measured_data(records, seed=config.conformer_seed)
    measured = dataclasses.replace(measured, mass_mean=stats.mean_da, mass_std=stats.std_da) \
        if stats is not None else measured
    libraries = measured_libraries(data, measured, config.measured_library_size, build_dir,
                                   config.conformer_seed, config.workers)
    cache = EmbeddingCache()  # the measured molecules are part of all three libraries
    libs = {n: lib.embed(model, build_dir, cache=cache) for n, lib in libraries.items()}
    ranks = {"zero-shot": measured_ranks(model, measured, measured.ir,
                                         torch.arange(len(measured)), libs, config.mass_tol_da)}
    meas = lever_table(ranks, seed=config.seed).T.reset_index().rename(columns={"zero-shot": "%"})
    sizes = ", ".join(f"{n}: {len(lib)}" for n, lib in libraries.items())
    return provenance, {
        f"Simulated test split ({len(data.splits['test'])} candidates)":
            sim.to_markdown(index=False),
        f"Measured gas-phase IR, zero-shot ({len(measured)} spectra; candidates: {sizes})":
            meas.to_markdown(index=False)}
