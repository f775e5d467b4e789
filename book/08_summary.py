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
# folder in this run (nothing is retyped). Each measured figure appears twice where it exists:
# ranked among the test split's molecules, and ranked among the larger library of Chapters 2–5
# (the test split's structures plus QM9 molecules without spectra as distractors). The paper's
# figures sit in separate columns marked "published": they were measured on QM9S, with DFT
# spectra for training and queries, full training and its own test split as the library. They
# are a reference point, not a target these runs are expected to hit: our data, spectra and
# (under the `cpu` profile) training budget differ, and our larger library, even at the same
# size, is a different set of candidates.

# %% tags=["parameters"]
profile = "cpu"
build_dir = "build"

# %% tags=["remove-cell"]
from IPython.display import Markdown, display

from vibraclip_core.analyses import summary as S
from vibraclip_core.experiments import chapter

# %%
table, missing = S.headline_table(build_dir)
shown = table.set_index(["chapter", "result"]).round(1)
display(chapter.dashes(shown))  # "—": not measured / not published
display(Markdown(S.missing_text(missing)))

# %% tags=["hide-input"]
display(Markdown(S.libraries_text(table)))

# %% [markdown]
# ## What the book cost to render
#
# Wall time of the latest execution of each chapter under this profile, recorded by
# `vibraclip_core.app.bookrun` (a chapter whose inputs did not change is not re-executed and keeps its
# earlier time).

# %%
timings = S.chapter_timings(build_dir, profile)
display(S.timings_frame(timings))
display(Markdown(S.cost_text(timings, S.book_run(build_dir, profile))))
