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
# # 3. Which modalities and which loss? (Fig. 3A)
#
# **Overview.** The paper's first ablation asks what each spectrum and each term of the loss
# contributes. Three models are trained here without mass anchoring:
#
# - **IR only** (`graph_ir`): the CLIP loss between graph and IR, $L(G, \mathrm{IR})$;
# - **IR + Raman, graph-centred** (`graph_centred`): $\tfrac12[L(G, \mathrm{IR}) + L(G, \mathrm{R})]$;
# - **IR + Raman, all pairs** (`all_pairs`): $\tfrac13[L(G, \mathrm{IR}) + L(G, \mathrm{R}) +
#   L(\mathrm{IR}, \mathrm{R})]$, which also aligns the two spectra with each other.
#
# Each model is evaluated on the same held-out test split, with the two IR + Raman scoring modes
# of [Chapter 2](02_pretraining.ipynb), and against a library of the paper's size (the test
# structures plus QM9 distractor structures, as in Chapter 2). Two baselines frame the numbers:
# the paper's non-learned baseline (SI S-2), fixed seeded random projections of fingerprints and
# spectra with nothing fitted, and a learned linear one, canonical correlation analysis (CCA)
# between fingerprints and spectra fitted on the training split.
#
# **Prerequisites.** [Chapter 1](01_data.ipynb) (data), [Chapter 2](02_pretraining.ipynb)
# (model, training, evaluation).

# %% tags=["parameters"]
profile = "cpu"
seed = None
ablation_epochs = None
data_dir = None
build_dir = "build"

# %% tags=["remove-cell"]
from IPython.display import Markdown, display

from vibraclip_core.analyses import ch3_loss_ablations as M
from vibraclip_core.analyses.book_facts import ablation_budget_text, glue_facts
from vibraclip_core.data.datasets import prepare
from vibraclip_core.experiments import chapter
from vibraclip_core.experiments import plots
from vibraclip_core.experiments.ablations import (LOSS_VARIANTS,
                                                  PUBLISHED_RANDOM_BASELINE_MAX_TOP_K,
                                                  library_labels)
from vibraclip_core.experiments.results import save_results

config = chapter.setup(profile, ablation=True, seed=seed, ablation_epochs=ablation_epochs,
                       data_dir=data_dir, build_dir=build_dir)
facts = glue_facts(config)  # the numbers the prose cites ({glue:text}`name`)
data = prepare(config)

# %% [markdown]
# ## Training budget

# %% tags=["hide-input"]
display(Markdown(ablation_budget_text(config, len(data.splits["train"]))))

# %% [markdown]
# ## Training the three variants
#
# Runs are cached by configuration and data; Chapters 4 and 5 load the same runs instead of
# retraining them.

# %%
runs = M.loss_variant_runs(config, data, chapter.TRAINER_KWARGS)
chapter.epochs_trained(runs)

# %% [markdown]
# ## Baselines
#
# - **Random projection (the paper's non-learned baseline, SI S-2):** {glue:text}`fingerprint_bits`-bit Morgan
#   fingerprints (radius {glue:text}`fingerprint_radius`) of the candidates and the query spectra are each multiplied by a
#   fixed Gaussian matrix (seeded; one per view; columns of unit length) into the latent
#   dimension, nothing fitted, and scored exactly like the model. It measures chance.
# - **CCA (a learned linear baseline):** canonical correlation analysis between the same
#   fingerprints and the spectra, fitted on the training split ({glue:text}`cca_axes` canonical axes; IR + Raman
#   through one shared structure space, scored with the library score).

# %%
cca, random_projection = M.baselines(config, data)

# %% [markdown]
# ## Results
#
# Top-k accuracy in %, with 95 % bootstrap intervals over queries, at two library sizes: the
# test split, and the test structures plus QM9 distractors up to the paper's library size.
# IR-only models are queried with the IR spectrum alone; the IR + Raman models with both
# spectra, scored with the *library* score (candidates' structures only; this book's default),
# the *paper* score (eq. 6, which also needs the candidates' IR embeddings, so it exists only at
# the test split: "NaN" in the larger library's columns), and with IR alone. The last columns
# hold the paper's published QM9S figures (DFT spectra, the paper's test library, at most 200
# epochs at full size), on the row of the query mode the paper used; they are quoted, not
# reproduced by this page.

# %%
labels = library_labels(config, data)
table = M.results_table(runs, [cca, random_projection], labels)
save_results(table, config.build_dir, "03_loss_ablations",
             {"profile": config.profile, "max_epochs": config.max_epochs,
              "n_test": len(data.splits["test"]), "library_size": config.library_size})
table

# %%
fig = plots.plot_topk_curves(M.topk_curves(runs, [cca, random_projection]),
                             f"test split, {len(data.splits['test'])} candidates "
                             "(IR+Raman models: library score)")

# %% [markdown]
# ## What this run shows

# %% tags=["hide-input"]
headline = M.headline_top1(table, runs)
ir_only, all_pairs = LOSS_VARIANTS[0].label, LOSS_VARIANTS[2].label
tri = runs[all_pairs].evaluation.table
display(Markdown(
    "Ranked by top-1 accuracy (each model in its own query mode), this run found: "
    + M.ranked_text(headline) + ". "
    f"Adding the Raman spectrum changes top-1 from {headline[ir_only]:.1f} % (IR only) to "
    f"{headline[all_pairs]:.1f} % (all pairs). "
    f"For the all-pairs model, the paper's score gives {tri.loc['ir+raman paper', 'top1']:.1f} % "
    f"against {tri.loc['ir+raman library', 'top1']:.1f} % for the library score; the difference "
    "is what the candidates' own IR embeddings add, which a structure library cannot supply. "
    f"The same model queried with IR alone reaches {tri.loc['ir', 'top1']:.1f} %."))

# %% tags=["hide-input"]
at_paper = M.headline_top1(table, runs, library=1)
display(Markdown(
    f"Against {labels[1]}, the same models reach " + M.ranked_text(at_paper) + " (library score "
    f"for the IR + Raman models). The learned linear baseline (CCA) reaches "
    f"{float(cca.test.table['top1'].max()):.1f} % top-1 at the test split; the paper's "
    f"random-projection baseline at most {random_projection.best_top1():.2f} % at either size "
    f"(chance: {100 / len(data.splits['test']):.2f} % and {100 / config.library_size:.4f} %; "
    f"published: below {PUBLISHED_RANDOM_BASELINE_MAX_TOP_K:.2f} % at every K)."))

# %% [markdown]
# ## Summary
#
# The table above is saved as `results/03_loss_ablations.csv` under the build folder; the book's
# summary page reads it. [Chapter 4](04_mass_anchoring.ipynb) adds the molecular mass to the
# IR-only and all-pairs models.
