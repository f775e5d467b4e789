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

from vibraclip_core.experiments import chapter
from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.analyses.summary import book_run, chapter_timings, headline_table

# %%
table, missing = headline_table(build_dir)
shown = table.set_index(["chapter", "result"]).round(1)
display(chapter.dashes(shown))  # "—": not measured / not published
if missing:
    display(Markdown("Not run yet in this build folder: " + ", ".join(missing) + "."))

# %% tags=["hide-input"]
libraries = table.attrs["libraries"]
display(Markdown(
    "Larger library in this run: "
    + ("; ".join(f"**{size}** candidates (column label: \"{label}\")"
                 for size, label in libraries.items()) or "none saved")
    + f". The published columns are the paper's QM9S figures at {PAPER_LIBRARY_SIZE:,} "
    "candidates (its test split, DFT spectra, full training), not figures at our library. "
    "Chapter 6's rows sit in the test-split columns; each names the library it was ranked "
    "against. A dash marks a value not measured (the paper score needs every candidate's "
    "spectra, so it exists only at the test split) or not published."))

# %% [markdown]
# ## What the book cost to render
#
# Wall time of the latest execution of each chapter under this profile, recorded by
# `vibraclip_core.app.bookrun` (a chapter whose inputs did not change is not re-executed and keeps its
# earlier time).

# %%
timings = chapter_timings(build_dir, profile)
display(timings.to_frame().assign(**{"minutes": (timings / 60).round(1)}))
run = book_run(build_dir, profile)
if len(timings):
    display(Markdown(
        f"Sum over {len(timings)} chapters: {timings.sum() / 60:.1f} min. "
        + (f"The latest run executed up to {run[1]} chapters side by side (`bookrun --jobs "
           f"{run[1]}`), so chapters overlap; from its start to this page it took "
           f"**{run[0] / 60:.1f} min** of wall time." if run else "")))
