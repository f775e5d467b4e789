# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The data: simulated IR and Raman spectra of QM9 molecules
#
# **Overview.** VibraCLIP learns one latent space for three views of a molecule: its 3-D graph,
# its infrared (IR) spectrum and its Raman spectrum. This chapter builds the data those views come
# from. The paper trains on QM9S (DFT spectra of QM9); this book ships its own, smaller set that
# it computes itself with the semi-empirical GFN2-xTB method, so that every chapter runs offline on
# a laptop. Users who have QM9S point `data_dir` at it and get the paper's setting.
#
# **Prerequisites.** None beyond the [introduction](intro.ipynb).
#
# **What you will see.** How the set was made and what failed; a carbonyl, a nitrile and an
# alcohol with their characteristic bands; the composition of the set; how far GFN2-xTB
# frequencies are from QM9's B3LYP ones; and the processed model inputs (graphs,
# {glue:text}`model_points`-point spectra, splits) that the later chapters load.

# %% tags=["parameters"]
profile = "cpu"
seed = None
n_molecules = None
fwhm_cm1 = None
data_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from vibraclip_core.analyses import ch1_data as C1
from vibraclip_core.analyses.book_facts import glue_facts
from vibraclip_core.data import datastats
from vibraclip_core.data.datasets import load_sticks, prepare
from vibraclip_core.data.spectra import model_grid
from vibraclip_core.experiments import chapter
from vibraclip_core.experiments import plots

config = chapter.setup(profile, seed=seed, n_molecules=n_molecules, fwhm_cm1=fwhm_cm1,
                       data_dir=data_dir, build_dir=build_dir)
facts = glue_facts(config)  # the numbers the prose cites ({glue:text}`name`)

# %% [markdown]
# ## How the spectra were made
#
# For each molecule, starting from its QM9 B3LYP geometry, the simulator
# (`vibraclip_core.data.simulate`) relaxes the structure with GFN2-xTB (through `tblite`), builds the
# Hessian from central differences of analytic gradients, and projects out translations and
# rotations to obtain harmonic frequencies. IR intensities come from dipole derivatives and Raman
# activities from polarizability derivatives; both are obtained from the nuclear gradient under
# small finite electric fields ({glue:text}`field_gradients` extra gradient evaluations per molecule). Molecules are taken in
# a seeded random order over the whole QM9 index, in shards, so the set grows by asking for more
# shards (`make data SHARDS=...`). Each molecule gets a status: `ok` or the reason it failed.

# %%
sticks_all = load_sticks(config.data_path)
sticks = C1.chapter_sticks(sticks_all, config.n_molecules)
status = datastats.status_table(sticks_all)
status.style.format({"percent": "{:.2f} %"}).hide(axis="index")

# %%
ok = sticks_all.status == "ok"
display(Markdown(
    f"The simulator attempted **{len(sticks_all)}** molecules in {len(sticks_all.shard_files)} "
    f"shards; **{int(ok.sum())}** succeeded ({100 * ok.mean():.2f} %). The median cost was "
    f"**{np.median(sticks_all.seconds[ok]):.2f} s** per molecule (one simulator process per CPU core). This chapter "
    f"uses **{len(sticks)}** of the successful molecules (profile `{config.profile}`)."))

# %% [markdown]
# ## Three functional groups
#
# Grey sticks are the computed harmonic modes; the coloured curves are the same sticks broadened
# with Lorentzians of the chosen full width at half maximum. The annotation marks the strongest
# mode in the window where the group's characteristic stretch is expected.

# %%
examples = C1.example_spectra(sticks)
fig = plots.plot_example_spectra(examples, config.fwhm_cm1)

# %% [markdown]
# ## What is in the set

# %%
n_atoms, n_heavy, elements, mass_da = datastats.composition(sticks.smiles)
fig = plots.plot_distributions(n_atoms, n_heavy, elements, mass_da)
display(Markdown(
    f"Molecules have {n_atoms.min()}–{n_atoms.max()} atoms ({n_heavy.min()}–{n_heavy.max()} "
    f"heavy atoms, median {np.median(n_heavy):.0f}) and masses of {mass_da.min():.1f}–"
    f"{mass_da.max():.1f} Da (median {np.median(mass_da):.1f} Da)."))

# %% [markdown]
# ## Reality check: GFN2-xTB against QM9's B3LYP frequencies
#
# QM9 ships B3LYP/6-31G(2df,p) harmonic frequencies for every molecule. Sorting both sets of
# modes of a molecule and pairing them one by one gives a rough, assignment-free comparison (it
# pairs modes by rank, not by character, so it slightly flatters both methods).

# %%
ref_cm1, gfn2_cm1 = datastats.frequency_pairs(sticks)
agreement = datastats.frequency_agreement(ref_cm1, gfn2_cm1)
fig = plots.plot_frequency_parity(ref_cm1, gfn2_cm1, "B3LYP (QM9)", "GFN2-xTB (ours)")
display(Markdown(
    f"Over {agreement['modes']} modes at or above 500 cm⁻¹, GFN2-xTB frequencies deviate from "
    f"B3LYP by **{agreement['mad_cm1']:.1f} cm⁻¹** on average (mean signed shift "
    f"{agreement['mean_shift_cm1']:+.1f} cm⁻¹, Pearson r = {agreement['pearson_r']:.4f}). A single "
    f"scale factor of {agreement['scale_factor']:.4f} brings the mean absolute deviation to "
    f"{agreement['mad_after_scaling_cm1']:.1f} cm⁻¹. The model never sees B3LYP spectra: this "
    "is only a check that the simulated spectra are chemically sensible, and a measure of the "
    "gap a model trained on them must bridge when it meets DFT or experimental spectra."))

# %% [markdown]
# ## Model inputs
#
# `vibraclip_core.data.datasets.prepare` turns the sticks into what the model reads, and caches the
# result under the build folder keyed by a hash of the data files and parameters (later
# chapters load it instantly): Lorentzian broadening on {glue:text}`grid_range` cm⁻¹ at 1 cm⁻¹
# ({glue:text}`fine_points` points), linear interpolation to {glue:text}`model_points` points, min-max scaling to [0, 1]; an RDKit ETKDG conformer with a
# fixed seed for each SMILES, of which the graph encoder reads the atomic numbers and 3-D
# positions; the molecular mass; and a {glue:text}`split` split in which all copies of one canonical
# molecule fall in the same split.

# %%
data = prepare(config)
report = pd.Series(data.report, name="count").to_frame()
report

# %%
rows, smiles = C1.first_test_molecules(data)
fig = plots.plot_model_inputs(model_grid(), data.ir[rows].numpy(), data.raman[rows].numpy(),
                              smiles)

# %% [markdown]
# ## Distractor structures
#
# Chapters 2–5 also rank the test queries in a library as large as the paper's, filled with QM9
# molecules that are not in the embedded set. Each needs a 3-D structure (an RDKit ETKDG conformer
# from its SMILES, seeded by `conformer_seed`, or QM9's own geometry where ETKDG fails).

# %% tags=["hide-input"]
display(Markdown(C1.distractor_structures(config, data)))

# %% [markdown]
# ## Summary

# %%
display(Markdown(
    f"The processed set holds **{len(data)}** molecules: {len(data.splits['train'])} for "
    f"training, {len(data.splits['val'])} for validation and {len(data.splits['test'])} for "
    f"testing, with spectra on {data.ir.shape[1]} points and molecular masses standardized with "
    f"the training mean ({data.mass_mean:.1f} Da) and standard deviation ({data.mass_std:.1f} Da)."
    " The next chapter trains VibraCLIP on it."))
