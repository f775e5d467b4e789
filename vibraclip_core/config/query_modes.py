"""The query modes: how a spectrum (or a pair of them) is scored against a library's structures.

One registry for every layer: evaluation tables index their rows by these names, chapters and
the summary print their labels, and `primary_query_mode` says which mode represents a model
trained with a given loss mode. Torch-free, like the loss modes it derives from.
"""

from __future__ import annotations

from dataclasses import dataclass

from vibraclip_core.config.loss_modes import LOSS_MODES, uses_raman


@dataclass(frozen=True)
class QueryMode:
    """A query mode: the spectra a query needs, a short label (table columns, plots) and the
    phrase the prose and the summary use."""

    spectra: tuple[str, ...]
    label: str
    text: str


IR = "ir"
RAMAN = "raman"
# ours: cos(G, IR_q) + cos(G, R_q), no candidate spectra needed (`retrieval.scores.library_scorer`)
IR_RAMAN = "ir+raman library"
# eq. 6 as released: signed cube root of cos(G,IR_q)·cos(G,R_q)·cos(IR_cand,R_q)
# (`retrieval.scores.paper_scorer`)
IR_RAMAN_PAPER = "ir+raman paper"

QUERY_MODES: dict[str, QueryMode] = {
    IR: QueryMode(("ir",), "IR", "IR query"),
    RAMAN: QueryMode(("raman",), "Raman", "Raman query"),
    IR_RAMAN: QueryMode(("ir", "raman"), "IR + Raman", "IR + Raman, library score"),
    IR_RAMAN_PAPER: QueryMode(("ir", "raman"), "IR + Raman (eq. 6)", "IR + Raman, paper score"),
}


def primary_query_mode(loss_mode: str) -> str:
    """The query mode that represents a model trained with `loss_mode`: IR + Raman (library
    score) when it trains the Raman encoder, IR otherwise."""
    return IR_RAMAN if uses_raman(loss_mode) else IR


def model_query_modes(loss_mode: str) -> tuple[str, ...]:
    """Every query mode a model trained with `loss_mode` answers, its primary one first."""
    return (IR_RAMAN, IR_RAMAN_PAPER, IR) if uses_raman(loss_mode) else (IR,)


assert set(LOSS_MODES) and all(primary_query_mode(m) in QUERY_MODES for m in LOSS_MODES)
