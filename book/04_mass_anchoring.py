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
# # 4. Mass anchoring (Fig. 3B)
#
# **Overview.** A vibrational spectrum says a lot about functional groups and little about the
# size of a molecule; a mass spectrometer says the opposite. The paper's *mass anchoring* appends
# the standardized molecular mass to every encoder output before its projection head, so that
# both the structures and the spectra are embedded together with their mass. This chapter trains
# the IR-only and the all-pairs models of [Chapter 3](03_loss_ablations.ipynb) again with mass
# anchoring and asks two questions the paper did not:
#
# 1. How much of the gain would a plain **mass filter** give, i.e. the unanchored model with its
#    candidates restricted to those within ±δ Da of the query's mass?
# 2. What happens when the user supplies a **wrong mass** ({glue:text}`wrong_mass`)?
#
# **Prerequisites.** [Chapter 3](03_loss_ablations.ipynb) (its unanchored runs are loaded from
# the cache, not retrained).

# %% tags=["parameters"]
profile = "cpu"
seed = None
ablation_epochs = None
mass_tol_da = None
wrong_mass_offsets_da = None
data_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
from IPython.display import Markdown, display

from vibraclip_core.analyses import ch4_mass_anchoring as A
from vibraclip_core.analyses.book_facts import glue_facts
from vibraclip_core.data.datasets import prepare
from vibraclip_core.experiments import chapter
from vibraclip_core.experiments import plots
from vibraclip_core.experiments.ablations import epoch_budget_text, library_labels
from vibraclip_core.experiments.results import save_results

config = chapter.setup(profile, ablation=True, seed=seed, ablation_epochs=ablation_epochs,
                       mass_tol_da=mass_tol_da, wrong_mass_offsets_da=wrong_mass_offsets_da,
                       data_dir=data_dir, build_dir=build_dir)
facts = glue_facts(config)  # the numbers the prose cites ({glue:text}`name`)
data = prepare(config)
labels = library_labels(config, data)  # (test split, larger library)

# %% [markdown]
# ## Runs
#
# The two anchored models use the same training budget as Chapter 3; the unanchored ones are
# Chapter 3's runs.

# %%
runs = A.anchoring_runs(config, data, chapter.TRAINER_KWARGS)
display(Markdown(epoch_budget_text(config, runs.all())))

# %% [markdown]
# ## Anchoring against filtering
#
# Each model is queried in its own mode (IR-only models with IR; all-pairs models with IR +
# Raman, library score, the score that works at any library size). "Mass filter" keeps only
# candidates within ±`mass_tol_da` of the query's true mass; it needs no retraining and works
# with any model. Both libraries of Chapter 3: the test split, and the test structures plus QM9
# distractors up to the paper's size. The paper's published Fig. 3B figures (QM9S, its test
# candidates, full training) sit in the last columns, on the rows scored as the paper scored
# them: IR for the IR-only model, eq. 6 for the all-pairs one (a last row, test split only,
# since eq. 6 needs every candidate's spectra). They are quoted, not reproduced.

# %%
table, settings = A.mass_anchoring_table(runs.plain, runs.filtered, runs.anchored, runs.both,
                                       config.mass_tol_da, labels)
save_results(table, config.build_dir, "04_mass_anchoring",
             {"profile": config.profile, "max_epochs": config.max_epochs,
              "mass_tol_da": config.mass_tol_da, "n_test": len(data.splits["test"]),
              "library_size": config.library_size})
table

# %%
fig = plots.plot_topk_curves(A.anchoring_curves(settings),
                             f"test split, {len(data.splits['test'])} candidates")

# %% tags=["hide-input"]
t = A.top1_lookup(table, settings)  # {(model, setting, library 0 or 1): top-1 %}
display(Markdown(A.anchoring_text(t, config.mass_tol_da)))

# %% tags=["hide-input"]
display(Markdown(A.larger_library_text(t, config.mass_tol_da, labels[1])))

# %% [markdown]
# ## A wrong mass
#
# An anchored model takes the mass as an input on the spectrum side too. A user who types the
# wrong mass shifts every query embedding; the candidates keep their true masses. The all-pairs
# model is queried again with the mass offset by the amounts below (no filter).

# %%
wrong_table, top1_by_offset = A.wrong_mass(runs.anchored[A.WRONG_MASS_MODEL], data,
                                           config.wrong_mass_offsets_da, labels)
wrong_table

# %%
fig = plots.plot_metric_lines(top1_by_offset, "error in the supplied mass / Da",
                              "top-1 accuracy / %", "all pairs + mass, IR + Raman query")

# %% tags=["hide-input"]
display(Markdown(A.wrong_mass_text(top1_by_offset, t)))

# %% [markdown]
# ## Summary
#
# The comparison table is saved as `results/04_mass_anchoring.csv` under the build folder.
# [Chapter 5](05_missing_data.ipynb) asks what happens when spectra are missing.
