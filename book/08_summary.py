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
# # Summary of results
#
# The headline numbers of every chapter, read from the tables the chapters saved under the build
# folder in this run (nothing is retyped). The paper's figures, measured on QM9S with DFT spectra,
# 13 k test candidates and full training, sit in separate columns marked "published": they are
# a reference point, not a target these runs are expected to hit with a different dataset, a
# different library size and (under the `cpu` profile) shorter training.

# %% tags=["parameters"]
profile = "cpu"
build_dir = "build"

# %% tags=["remove-cell"]
import pandas as pd
from IPython.display import Markdown, display

from vibraclip_core.summary import chapter_timings, headline_table

# %%
table, missing = headline_table(build_dir)
shown = table.set_index(["chapter", "result"]).round(1)
display(shown.astype(object).where(shown.notna(), "—"))  # "—": not measured / not published
if missing:
    display(Markdown("Not run yet in this build folder: " + ", ".join(missing) + "."))

# %% [markdown]
# ## What the book cost to render
#
# Wall time of the latest execution of each chapter under this profile, recorded by
# `vibraclip_core.bookrun` (a chapter whose inputs did not change is not re-executed and keeps its
# earlier time).

# %%
timings = chapter_timings(build_dir, profile)
display(timings.to_frame().assign(**{"minutes": (timings / 60).round(1)}))
if len(timings):
    display(Markdown(f"Total: {timings.sum() / 60:.1f} min over {len(timings)} chapters."))
