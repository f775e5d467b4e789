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
# # 2. Pretraining VibraCLIP
#
# **Overview.** This chapter trains the main model of the book: a DimeNet++ encoder for the 3-D
# graph, two multilayer perceptrons for the IR and Raman spectra, and a projection head on each
# that maps into one shared latent space. The contrastive loss pulls the three views of the same
# molecule together and pushes different molecules apart. The main model uses all three pairs
# (graph–IR, graph–Raman, IR–Raman) and "mass anchoring", the standardized molecular mass
# appended to each encoder output before its head. Later chapters load the checkpoint saved here.
#
# **Prerequisites.** [Chapter 1](01_data.ipynb) (the processed data, loaded from its cache).

# %% tags=["parameters"]
profile = "cpu"
seed = 0
loss = "all_pairs"
mass = True
max_epochs = None
compare_reference_loss = None
data_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
import logging
import warnings

import pandas as pd
from IPython.display import Markdown, display

from vibraclip_core import plots
from vibraclip_core.ablations import (MASS_VARIANTS, Variant, default_compare_reference_loss,
                                      run_variant, save_results)
from vibraclip_core.config import get_config
from vibraclip_core.datasets import prepare
from vibraclip_core.model import VibraCLIP
from vibraclip_core.evaluate import evaluate
from vibraclip_core.train import final_metrics, load_model, time_training_step, train

logging.getLogger("lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module="lightning")
config = get_config(profile, seed=seed, loss=loss, mass=mass, max_epochs=max_epochs,
                    data_dir=data_dir, build_dir=build_dir)
trainer_kwargs = {"enable_progress_bar": False, "accelerator": "auto"}
if compare_reference_loss is None:
    compare_reference_loss = default_compare_reference_loss(config.profile)

# %% [markdown]
# ## The model and its size
#
# The `paper` profile reproduces the published sizes: DimeNet++ with hidden size 128, output 181,
# 4 interaction blocks, spherical basis 7 × radial basis 6 and a 5 Å cutoff; spectra encoders
# 1750 → 1262 → 497; heads into a 861-dimensional space. The profile this page was rendered with
# may shrink the graph encoder and the latent space so that the whole book runs on a laptop CPU;
# the table shows both.

# %%
def parameter_frame(cfg):
    rows = VibraCLIP(cfg).parameter_table()
    return pd.DataFrame(rows, columns=["part", "parameters", "trainable"]).set_index("part")

paper_config = get_config("paper", mass=mass)
sizes = pd.concat({f"profile `{config.profile}`": parameter_frame(config)["parameters"],
                   "profile `paper`": parameter_frame(paper_config)["parameters"]}, axis=1)
sizes

# %%
frozen = VibraCLIP(paper_config)
frozen.freeze_for_realignment()
table = dict((r[0], r) for r in frozen.parameter_table())
display(Markdown(
    f"At the paper's size the model has **{table['total'][1] / 1e6:.2f} M** parameters; freezing "
    f"all but the last layer of each projection head for realignment (Chapter 6) leaves "
    f"{table['total'][2] / 1e6:.2f} M trainable and {(table['total'][1] - table['total'][2]) / 1e6:.2f}"
    " M frozen."))

# %% [markdown]
# Why a smaller model on a CPU? One training step at each size, timed on this machine with the
# same batch:

# %%
data = prepare(config)
step_s = {name: time_training_step(cfg.replace(build_dir=config.build_dir), data, reps=1)
          for name, cfg in (("this profile", config), ("paper size", paper_config))}
epoch_steps = len(data.splits["train"]) // config.batch_size
display(Markdown(
    f"A step on {config.batch_size} molecules takes {step_s['this profile']:.2f} s at this "
    f"profile's size and {step_s['paper size']:.2f} s at the paper's "
    f"({step_s['paper size'] / step_s['this profile']:.1f}× longer): an epoch of {epoch_steps} "
    f"steps costs about {epoch_steps * step_s['this profile'] / 60:.1f} min here against "
    f"{epoch_steps * step_s['paper size'] / 60:.1f} min at the paper's size. The accuracy the "
    "smaller model gives up is measured by rerunning this chapter with `profile = \"paper\"` (on "
    "a GPU node); this page only reports what its own run measured."))

# %% [markdown]
# ## Training
#
# AdamW with separate learning rates for the graph encoder, the spectra encoders and the heads;
# the learning rate halves when the validation loss stops improving, and training stops early
# after `patience` epochs without improvement. Each epoch ends with a retrieval check on the
# validation split: every validation spectrum ranks all validation molecules' graph embeddings
# by cosine similarity, and top-k counts how often the true molecule is among the first k. The
# run is cached under the build folder by a hash of its configuration and data: rerunning the
# chapter loads it, and an interrupted run resumes from its last checkpoint.

# %%
result = train(config, data, tag="main", trainer_kwargs=trainer_kwargs)
best = final_metrics(result)
fig = plots.plot_history(result.history, f"{config.loss}, mass anchoring {'on' if config.mass else 'off'}")

# %%
n_val = len(data.splits["val"])
chance = {k: k / n_val for k in (1, 5, 10)}
display(Markdown(
    f"Training ran {len(result.history)} epochs on {len(data.splits['train'])} molecules. At the "
    f"best epoch ({int(best['epoch'])}), an IR spectrum finds its molecule first among the "
    f"{n_val} validation molecules **{100 * best['val_top1_ir']:.1f} %** of the time, and an "
    f"IR + Raman pair **{100 * best['val_top1_ir_raman']:.1f} %**; top-10: "
    f"{100 * best['val_top10_ir']:.1f} % and {100 * best['val_top10_ir_raman']:.1f} %. Chance "
    f"would be {100 * chance[1]:.2f} % for top-1 and {100 * chance[10]:.2f} % for top-10, so the "
    f"IR + Raman top-1 is {best['val_top1_ir_raman'] / chance[1]:.0f} times chance."))

# %% [markdown]
# ## Retrieval on the test split
#
# `vibraclip_core.evaluate` embeds the held-out test molecules and ranks, for each test spectrum,
# all test molecules by similarity. A hit is judged by canonical identity (canonical SMILES
# without stereochemistry). Two scores combine IR and Raman: the *library* score (the default)
# uses only the candidates' structures, as a real structure library allows; the *paper* score is
# the published one, which also compares the query's Raman with the candidates' IR embeddings and
# so needs spectra of the candidates. Intervals are 95 % bootstrap intervals over queries.

# %%
evaluation = evaluate(load_model(result.best_checkpoint, expected=config), data, "test",
                      config.build_dir, seed=config.seed)
save_results(evaluation.table, config.build_dir, "02_pretraining",
             {"profile": config.profile, "n_test": len(data.splits["test"])})
evaluation.table.round(3)

# %%
fig = plots.plot_topk_curves(evaluation.curves, f"test split, {len(data.splits['test'])} candidates")

# %% [markdown]
# ## Which contrastive loss?
#
# The paper writes the standard CLIP loss on cosine similarities. The released reference code
# computes something else: raw dot products of the LayerNorm-ed (not unit-length) embeddings
# divided by a fixed temperature of 141, against "soft" targets built from the softmax of the
# intra-modal similarity matrices, which in practice are nearly one-hot. This book's default is
# the cosine loss with a learnable temperature. The comparison below (`compare_reference_loss`; its
# default depends on the profile) trains both variants with the same data, model and the shorter
# epoch budget of the ablation chapters (the default-loss run is the one Chapter 4 reuses), so the
# choice rests on a measurement.

# %%
if compare_reference_loss:
    short = config.for_ablation()
    runs = {label: run_variant(short, data, Variant(key, label, {**MASS_VARIANTS[1].overrides,
                                                                 "pair_loss": pair_loss}),
                               trainer_kwargs).result
            for key, label, pair_loss in (
                ("all_pairs+mass", "cosine CLIP, learnable temperature (default)", "clip"),
                ("all_pairs+mass+reference-loss",
                 "reference variant (dot product / 141, soft targets)", "reference"))}
    keys = ["val_top1_ir", "val_top5_ir", "val_top10_ir", "val_top1_ir_raman",
            "val_top5_ir_raman", "val_top10_ir_raman"]
    comparison = pd.DataFrame({label: [100 * final_metrics(r)[k] for k in keys]
                               for label, r in runs.items()},
                              index=[k.replace("val_", "") for k in keys]).round(1)
    winner = comparison.columns[int(comparison.loc["top1_ir_raman"].argmax())]
    display(comparison)
    display(Markdown(f"Validation top-k accuracy in %, best epoch of each run (at most "
                     f"{short.max_epochs} epochs). Higher IR + Raman top-1 in this run: "
                     f"**{winner}**."))
else:
    display(Markdown(f"Not trained in this run: the `{config.profile}` profile skips the "
                     f"comparison to keep the book within its time budget. Execute this chapter "
                     f"with `compare_reference_loss=True` to train both variants."))

# %% [markdown]
# ## Summary

# %%
display(Markdown(
    f"The main model's checkpoint is `{result.best_checkpoint}`; Chapters 3–7 load it. "
    f"Its configuration is saved beside it as `config.json`."))
