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
# # 5. Missing spectra
#
# **Overview.** Real collections rarely hold both an IR and a Raman spectrum for every molecule.
# The contrastive loss copes by masking: a molecule without a Raman spectrum still contributes
# its graph–IR term, and drops out of the terms that need Raman. This chapter measures what that
# costs, as the paper's SI does:
#
# - **(a)** the IR-only model (`graph_ir`) trained with a fraction of its training IR spectra
#   removed;
# - **(b)** the tri-modal all-pairs model trained with a fraction of its training Raman spectra
#   removed (those molecules keep their graph and IR).
#
# Every model is evaluated on the full test split, where every molecule has both spectra. The
# tri-modal models are also queried with IR alone, the common case of a user who has only an IR
# spectrum.
#
# **Prerequisites.** [Chapter 3](03_loss_ablations.ipynb) (its runs are the 0 % points here).

# %% tags=["parameters"]
profile = "cpu"
seed = 0
ablation_epochs = None
missing_fractions = None
data_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
import logging
import warnings

import pandas as pd
from IPython.display import Markdown, display

from vibraclip_core import plots
from vibraclip_core.ablations import (LOSS_VARIANTS, Variant, default_missing_fractions,
                                      run_variant, save_results)
from vibraclip_core.config import get_config
from vibraclip_core.datasets import prepare

logging.getLogger("lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module="lightning")
config = get_config(profile, seed=seed, ablation_epochs=ablation_epochs, data_dir=data_dir,
                    build_dir=build_dir).for_ablation()
trainer_kwargs = {"enable_progress_bar": False, "accelerator": "auto"}
data = prepare(config)
base = {v.key: v for v in LOSS_VARIANTS}
missing_fractions = missing_fractions or default_missing_fractions(config.profile)

# %% [markdown]
# ## Training with spectra removed
#
# The removed molecules are drawn at random from the training split (seeded); validation and
# test keep everything. The 0 % runs are Chapter 3's, loaded from the cache. The fractions
# default to the paper's 0, 10, 25 and 50 % under the `paper` profile; the `cpu` profile keeps
# only 0 and 50 % to keep the whole book within its hour (each further point costs two trainings;
# set `missing_fractions` to choose).

# %%
def with_missing(key: str, field: str, fraction: float) -> Variant:
    v = base[key]
    if fraction == 0:
        return v
    return Variant(f"{key}+missing-{field}-{fraction:g}", v.label, {**v.overrides, field: fraction})

runs_ir = {f: run_variant(config, data, with_missing("graph_ir", "missing_ir", f), trainer_kwargs)
           for f in missing_fractions}
runs_raman = {f: run_variant(config, data, with_missing("all_pairs", "missing_raman", f),
                             trainer_kwargs) for f in missing_fractions}

# %% [markdown]
# ## Accuracy against the missing fraction
#
# Top-1 and top-10 in % on the test split.

# %%
series = {"(a) IR only, IR query": (runs_ir, "ir"),
          "(b) all pairs, IR + Raman query": (runs_raman, "ir+raman library"),
          "(b) all pairs, IR-only query": (runs_raman, "ir")}
table = pd.DataFrame({(name, f"top{k} %"): [float(runs[f].evaluation.table.loc[m, f"top{k}"])
                                           for f in missing_fractions]
                      for name, (runs, m) in series.items() for k in (1, 10)},
                     index=pd.Index([100 * f for f in missing_fractions],
                                    name="spectra removed from training / %")).round(1)
save_results(table, config.build_dir, "05_missing_data",
             {"profile": config.profile, "max_epochs": config.max_epochs,
              "n_test": len(data.splits["test"])})
table

# %%
top1 = table.xs("top1 %", axis=1, level=1)
fig = plots.plot_metric_lines(top1, "spectra removed from training / %", "top-1 accuracy / %",
                              f"test split, {len(data.splits['test'])} candidates")

# %% tags=["hide-input"]
lo, hi = top1.index.min(), top1.index.max()
change = (top1.loc[hi] - top1.loc[lo]).round(1) + 0.0  # + 0.0: no "-0.0"
display(Markdown(
    f"Removing {hi:.0f} % of the spectra from training changes top-1 by "
    + "; ".join(f"{d:+.1f} points for {name}" for name, d in change.items()) + ". "
    f"Queried with IR only, the tri-modal model trained on complete data reaches "
    f"{top1.loc[lo, '(b) all pairs, IR-only query']:.1f} %, against "
    f"{top1.loc[lo, '(a) IR only, IR query']:.1f} % for the model trained on IR alone: "
    + ("training with Raman helped IR-only queries in this run."
       if top1.loc[lo, '(b) all pairs, IR-only query'] > top1.loc[lo, '(a) IR only, IR query']
       else "training with Raman did not help IR-only queries in this run.")))

# %% [markdown]
# ## Summary
#
# The table is saved as `results/05_missing_data.csv` under the build folder.
# [Chapter 6](06_realignment.ipynb) moves the pretrained model to new molecules and to measured
# spectra.
