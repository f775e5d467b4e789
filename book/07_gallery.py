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
# # 7. A retrieval gallery (Fig. 4)
#
# **Overview.** Accuracy tables hide what a retrieval looks like. This chapter draws, for a few
# test molecules, the target and the candidates the model ranks first, each labelled with its
# similarity score and the correct one framed in green, as in the paper's Fig. 4. It shows hits
# and misses, then measures over the whole test split what the wrong candidates have in common
# with the target, and ends with measured spectra from [Chapter 6](06_realignment.ipynb).
#
# **Prerequisites.** [Chapter 2](02_pretraining.ipynb) (the model, loaded from its cache).

# %% tags=["parameters"]
profile = "cpu"
seed = None
top_k = 25
n_hits = 2
n_misses = 2
n_measured = 2
experimental_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
from IPython.display import Markdown, display

from vibraclip_core.analyses import ch7_gallery as C7
from vibraclip_core.experiments import chapter
from vibraclip_core.experiments import gallery as G

config = chapter.setup(profile, seed=seed, build_dir=build_dir)
main = chapter.pretrained_model(profile, build_dir)  # Chapter 2's model, of its parameters

# %% [markdown]
# ## Test molecules, queried with IR + Raman
#
# Every test molecule's IR and Raman spectra rank all test molecules (library score: candidate
# structures only). The gallery shows a seeded sample of `n_hits` molecules found first and
# `n_misses` that were not.

# %%
test = C7.split_gallery(main.model, main.data, build_dir, top_k, n_hits, n_misses, seed=config.seed)
display(Markdown(f"{len(test.smiles)} candidates; top-1 over the whole split: "
                 f"{test.top1_percent:.1f} %."))

# %%
C7.show_each(test.plot, test.picks)

# %% [markdown]
# ## What the wrong candidates share with the target
#
# Over every test query, the top candidates that are *not* the target: how many are isomers
# (the same molecular formula), how many carry exactly the target's functional groups, and how
# many share at least one group with it (groups: carbonyl, hydroxyl, ether, nitrile, amine, amide,
# aromatic ring, alkene, alkyne, fluorine, three-membered ring).

# %%
shared = G.similarity_to_target(test.ret, test.smiles, test.smiles, k=5)
shared

# %% tags=["hide-input"]
display(Markdown(C7.wrong_candidates_text(shared)))

# %% [markdown]
# ## Measured IR spectra
#
# A few measured gas-phase IR spectra (no Raman) against the embedded QM9 molecules plus the
# measured molecules not among them, with the pretrained model (before any realignment).

# %%
records, _ = chapter.measured_spectra(experimental_dir)
measured = G.measured_ir_gallery(main.model, main.data, records, main.checkpoint, build_dir,
                                 min(top_k, 10), n_measured, config.seed, config.conformer_seed)
C7.show_each(measured.plot, measured.chosen)

# %% [markdown]
# ## Summary
#
# The gallery draws from the same model and scores as the tables of Chapters 2–6; nothing here is
# selected by hand except the seed.
