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
# 2. What happens when the user supplies a **wrong mass** (±1 Da, ±5 Da)?
#
# **Prerequisites.** [Chapter 3](03_loss_ablations.ipynb) (its unanchored runs are loaded from
# the cache, not retrained).

# %% tags=["parameters"]
profile = "cpu"
seed = 0
ablation_epochs = None
mass_tol_da = 0.5
wrong_mass_offsets_da = [-5.0, -1.0, 1.0, 5.0]
data_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
import logging
import warnings

import pandas as pd
from IPython.display import Markdown, display

from vibraclip_core import plots
from vibraclip_core.ablations import (LOSS_VARIANTS, MASS_VARIANTS, evaluation_row,
                                      published_table, reevaluate, run_variant, save_results)
from vibraclip_core.config import get_config
from vibraclip_core.datasets import prepare

logging.getLogger("lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module="lightning")
config = get_config(profile, seed=seed, ablation_epochs=ablation_epochs, data_dir=data_dir,
                    build_dir=build_dir).for_ablation()
trainer_kwargs = {"enable_progress_bar": False, "accelerator": "auto"}
data = prepare(config)

# %% [markdown]
# ## Runs
#
# The two anchored models use the same training budget as Chapter 3; the unanchored ones are
# Chapter 3's runs.

# %%
plain = {v.key: run_variant(config, data, v, trainer_kwargs)
         for v in LOSS_VARIANTS if v.key in ("graph_ir", "all_pairs")}
anchored = {v.key: run_variant(config, data, v, trainer_kwargs) for v in MASS_VARIANTS}
filtered = {key: reevaluate(run, data, mass_tol_da=mass_tol_da) for key, run in plain.items()}
both = {key: reevaluate(run, data, mass_tol_da=mass_tol_da) for key, run in anchored.items()}

# %% [markdown]
# ## Anchoring against filtering
#
# Each model is queried in its own mode (IR-only models with IR; all-pairs models with IR +
# Raman, library score). "Mass filter" keeps only candidates within ±`mass_tol_da` of the
# query's true mass; it needs no retraining and works with any model.

# %%
mode = {"graph_ir": "ir", "all_pairs": "ir+raman library"}
rows = []
for key in ("graph_ir", "all_pairs"):
    m = mode[key]
    rows += [evaluation_row(f"{key}", m, plain[key].evaluation, query="no mass"),
             evaluation_row(f"{key}", m, filtered[key], query=f"mass filter ±{mass_tol_da} Da"),
             evaluation_row(f"{key}", m, anchored[key + "+mass"].evaluation,
                            query="mass anchoring"),
             evaluation_row(f"{key}", m, both[key + "+mass"],
                            query=f"anchoring + filter ±{mass_tol_da} Da")]
table = pd.DataFrame(rows).set_index(["model", "query"])
save_results(table, config.build_dir, "04_mass_anchoring",
             {"profile": config.profile, "max_epochs": config.max_epochs,
              "mass_tol_da": mass_tol_da, "n_test": len(data.splits["test"])})
table

# %% [markdown]
# Published QM9S figures (the paper's Fig. 3B; different data and full training, for reference
# only):

# %%
published_table(MASS_VARIANTS)

# %%
curves = {f"{key}, {label}": ev.curves[mode[key]]
          for key in ("graph_ir", "all_pairs")
          for label, ev in (("no mass", plain[key].evaluation), ("mass filter", filtered[key]),
                            ("mass anchoring", anchored[key + "+mass"].evaluation))}
fig = plots.plot_topk_curves(curves, f"test split, {len(data.splits['test'])} candidates")

# %% tags=["hide-input"]
def top1(key: str, query: str) -> float:
    return float(table.loc[(key, query), "top1 %"])

f = f"mass filter ±{mass_tol_da} Da"
display(Markdown(
    f"For the all-pairs model, top-1 goes from {top1('all_pairs', 'no mass'):.1f} % without mass "
    f"to {top1('all_pairs', f):.1f} % with the mass filter and "
    f"{top1('all_pairs', 'mass anchoring'):.1f} % with anchoring; for the IR-only model from "
    f"{top1('graph_ir', 'no mass'):.1f} % to {top1('graph_ir', f):.1f} % (filter) and "
    f"{top1('graph_ir', 'mass anchoring'):.1f} % (anchoring). "
    + ("In this run the filter alone recovers more than anchoring does for the all-pairs model. "
       if top1('all_pairs', f) > top1('all_pairs', 'mass anchoring') else
       "In this run anchoring beats the plain filter for the all-pairs model. ")
    + f"Combining both gives {top1('all_pairs', 'anchoring + filter ±' + str(mass_tol_da) + ' Da'):.1f} %."))

# %% [markdown]
# ## A wrong mass
#
# An anchored model takes the mass as an input on the spectrum side too. A user who types the
# wrong mass shifts every query embedding; the candidates keep their true masses. The all-pairs
# model is queried again with the mass offset by the amounts below (no filter).

# %%
key = "all_pairs+mass"
offsets = sorted({0.0, *wrong_mass_offsets_da})
wrong = {dm: (anchored[key].evaluation if dm == 0 else
              reevaluate(anchored[key], data, query_mass_offset_da=dm)) for dm in offsets}
wrong_table = pd.DataFrame(
    {f"top{k} %": [float(wrong[dm].table.loc["ir+raman library", f"top{k}"]) for dm in offsets]
     for k in (1, 5, 10, 25)}, index=pd.Index(offsets, name="mass offset / Da")).round(1)
wrong_table

# %%
fig = plots.plot_metric_lines(wrong_table, "error in the supplied mass / Da", "accuracy / %",
                              "all pairs + mass, IR + Raman query")

# %% tags=["hide-input"]
worst = wrong_table["top1 %"].idxmin()
display(Markdown(
    f"With the correct mass the anchored model finds {wrong_table.loc[0.0, 'top1 %']:.1f} % of "
    f"the test molecules first; the worst offset tried ({worst:+.0f} Da) leaves "
    f"{wrong_table.loc[worst, 'top1 %']:.1f} %, against {top1('all_pairs', 'no mass'):.1f} % for "
    "the model trained without mass"
    + (": in this run a wrong mass costs more than supplying none."
       if wrong_table.loc[worst, 'top1 %'] < top1('all_pairs', 'no mass') else
       ": in this run even the worst offset did not fall below the unanchored model.")))

# %% [markdown]
# ## Summary
#
# The comparison table is saved as `results/04_mass_anchoring.csv` under the build folder.
# [Chapter 5](05_missing_data.ipynb) asks what happens when spectra are missing.
