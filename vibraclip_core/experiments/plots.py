"""Figures used by the chapters. Each function returns a matplotlib Figure and computes nothing
that a chapter would need as a number (those come from datasets / evaluate)."""

from __future__ import annotations

import textwrap
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

from vibraclip_core.config.query_modes import IR_RAMAN
from vibraclip_core.data.formulas import ELEMENTS
from vibraclip_core.data.spectra import (GRID_MAX_CM1, GRID_MIN_CM1, broaden_sticks, fine_grid,
                                         model_grid)

# Windows for annotating a characteristic band: (label, low cm-1, high cm-1)
BAND_WINDOWS = {
    "carbonyl": ("C=O stretch", 1600.0, 1950.0),
    "nitrile": ("C≡N stretch", 2150.0, 2400.0),
    "alcohol": ("O–H stretch", 3300.0, 3800.0),
}



def _finish(fig: plt.Figure, ax: plt.Axes, title: str) -> plt.Figure:
    """The common end of a one-panel figure: grid, legend, optional title, tight layout."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig

def plot_example_spectra(examples: dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                         fwhm_cm1: float) -> plt.Figure:
    """One row per example: IR (left) and Raman (right), sticks plus broadened curve.

    `examples` maps a band key of BAND_WINDOWS to (smiles, freqs_cm1, ir_km_mol, raman_a4_amu).
    """
    grid = fine_grid()
    fig, axes = plt.subplots(len(examples), 2, figsize=(11, 2.6 * len(examples)), squeeze=False,
                             sharex=True)
    for row, (key, (smiles, freqs, ir, raman)) in enumerate(examples.items()):
        label, lo, hi = BAND_WINDOWS[key]
        for col, (name, inten, unit, color) in enumerate(
                [("IR", ir, "km/mol", "tab:red"), ("Raman", raman, "Å⁴/amu", "tab:blue")]):
            ax = axes[row, col]
            curve = broaden_sticks(freqs, inten, np.array([0, len(freqs)]), fwhm_cm1)[0]
            scale = curve.max() if curve.max() > 0 else 1.0
            keep = (freqs >= GRID_MIN_CM1) & (freqs <= GRID_MAX_CM1)
            ax.vlines(freqs[keep], 0, inten[keep] / max(inten[keep].max(initial=0), 1e-12),
                      color="0.6", lw=0.8)
            ax.plot(grid, curve / scale, color=color, lw=1.2)
            in_window = keep & (freqs >= lo) & (freqs <= hi)
            if in_window.any():
                k = np.flatnonzero(in_window)[np.argmax(inten[in_window])]
                y = inten[k] / max(inten[keep].max(), 1e-12)
                ax.annotate(f"{label}\n{freqs[k]:.0f} cm⁻¹", (freqs[k], y),
                            xytext=(0, 14), textcoords="offset points", ha="center",
                            fontsize=8, arrowprops=dict(arrowstyle="-", lw=0.6))
            ax.set_ylim(0, 1.35)
            ax.set_title(f"{name} of {smiles} (peak = {inten[keep].max(initial=0):.3g} {unit})",
                         fontsize=9)
            ax.set_yticks([])
    for ax in axes[-1]:
        ax.set_xlabel("wavenumber / cm⁻¹")
        ax.set_xlim(GRID_MIN_CM1, GRID_MAX_CM1)
    fig.tight_layout()
    return fig


def plot_distributions(n_atoms: np.ndarray, n_heavy: np.ndarray, elements: Counter,
                       mass_da: np.ndarray) -> plt.Figure:
    """Histograms of atom counts and mass, and element frequencies."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    bins = np.arange(n_atoms.min(), n_atoms.max() + 2) - 0.5
    axes[0].hist(n_atoms, bins=bins, color="tab:gray", alpha=0.7, label="all atoms")
    axes[0].hist(n_heavy, bins=np.arange(0, n_heavy.max() + 2) - 0.5, color="tab:green",
                 alpha=0.7, label="heavy atoms")
    axes[0].set_xlabel("atoms per molecule")
    axes[0].set_ylabel("molecules")
    axes[0].legend(fontsize=8)
    names = [e for e in ELEMENTS if e in elements]
    axes[1].bar(names, [elements[e] for e in names], color="tab:purple")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("atoms in the set")
    axes[1].set_title("elements", fontsize=10)
    axes[2].hist(mass_da, bins=40, color="tab:orange")
    axes[2].set_xlabel("molecular mass / Da")
    fig.tight_layout()
    return fig


def plot_frequency_parity(ref_cm1: np.ndarray, ours_cm1: np.ndarray, ref_label: str,
                          ours_label: str) -> plt.Figure:
    """Hexbin parity plot of paired harmonic frequencies and a histogram of differences."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    hb = axes[0].hexbin(ref_cm1, ours_cm1, gridsize=80, bins="log", cmap="viridis", mincnt=1)
    lim = [0, max(ref_cm1.max(), ours_cm1.max()) * 1.02]
    axes[0].plot(lim, lim, color="k", lw=0.8, ls="--")
    axes[0].set_xlabel(f"{ref_label} / cm⁻¹")
    axes[0].set_ylabel(f"{ours_label} / cm⁻¹")
    fig.colorbar(hb, ax=axes[0], label="modes")
    diff = ours_cm1 - ref_cm1
    axes[1].hist(diff, bins=np.linspace(np.percentile(diff, 0.5), np.percentile(diff, 99.5), 100),
                 color="tab:blue")
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].set_xlabel(f"{ours_label} − {ref_label} / cm⁻¹")
    axes[1].set_ylabel("modes")
    fig.tight_layout()
    return fig


def plot_model_inputs(grid_cm1: np.ndarray, ir: np.ndarray, raman: np.ndarray,
                      titles: list[str]) -> plt.Figure:
    """Model inputs (1750-point, min-max scaled) of a few molecules, IR over Raman."""
    fig, axes = plt.subplots(len(titles), 1, figsize=(10, 1.9 * len(titles)), sharex=True,
                             squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        ax.plot(grid_cm1, ir[k], color="tab:red", lw=1, label="IR")
        ax.plot(grid_cm1, -raman[k], color="tab:blue", lw=1, label="Raman (mirrored)")
        ax.set_title(titles[k], fontsize=9)
        ax.set_yticks([-1, 0, 1])
    axes[0, 0].legend(fontsize=8, loc="upper left")
    axes[-1, 0].set_xlabel("wavenumber / cm⁻¹")
    fig.tight_layout()
    return fig


def plot_history(history: list[dict[str, float]], title: str = "") -> plt.Figure:
    """Training/validation loss and validation top-k retrieval per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        if any(key in h for h in history):
            axes[0].plot(epochs, [h.get(key, np.nan) for h in history], style, label=key)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("contrastive loss")
    axes[0].legend(fontsize=8)
    for name, color in (("ir", "tab:red"), ("ir_raman", "tab:purple")):
        for k, style in ((1, "-"), (5, "--"), (10, ":")):
            key = f"val_top{k}_{name}"
            if any(key in h for h in history):
                axes[1].plot(epochs, [100 * h.get(key, np.nan) for h in history], style,
                             color=color, label=f"top-{k}, {name.replace('_', ' + ')} query")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation accuracy / %")
    axes[1].legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_topk_curves(curves: dict[str, np.ndarray], title: str = "") -> plt.Figure:
    """Top-1 ... top-K accuracy (%) against K, one line per query mode (the paper's Fig. 3)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, curve in curves.items():
        k = np.arange(1, len(curve) + 1)
        ax.plot(k, 100 * curve, marker="o", ms=3, label=name)
    ax.set_xlabel("K")
    ax.set_ylabel("top-K accuracy / %")
    ax.set_ylim(0, 100)
    return _finish(fig, ax, title)


def plot_metric_lines(frame, xlabel: str, ylabel: str, title: str = "") -> plt.Figure:
    """One line per column of `frame` against its index (e.g. accuracy vs missing fraction)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for column in frame.columns:
        ax.plot(frame.index, frame[column], marker="o", label=str(column))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    return _finish(fig, ax, title)


def plot_library_size(frame, paper_size: int | None = None, title: str = "") -> plt.Figure:
    """Top-1/5/10/25 (%) against library size (log axis): one panel per K, one colour per query
    mode, solid without and dashed with the mass filter. `frame` is `library_size.size_frame`
    output with settings "no filter" and one other (the filter)."""
    ks = [c for c in frame.columns if c.startswith("top")]
    modes = list(dict.fromkeys(frame["query"]))
    settings = list(dict.fromkeys(frame["setting"]))
    ncol = 2 if len(ks) > 2 else len(ks)
    nrow = -(-len(ks) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(9, 3.4 * nrow + 0.8), sharey=True,
                             squeeze=False)
    colours = dict(zip(modes, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, k in zip(axes.flat, ks):
        for setting, style in zip(settings, ("-", "--", ":")):
            for mode in modes:
                part = frame[(frame["setting"] == setting) & (frame["query"] == mode)]
                part = part.sort_values("library size")
                ax.plot(part["library size"], part[k], style, marker="o", ms=3,
                        color=colours[mode], label=f"{mode}, {setting}")
        if paper_size:
            ax.axvline(paper_size, color="0.5", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_title(k.replace(" %", ""), fontsize=10)
        ax.set_xlabel("candidates in the library")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy / %")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(3, len(labels)),
               frameon=False)
    return fig


def plot_measured_vs_simulated(measured: np.ndarray, simulated: np.ndarray,
                               title: str = "") -> plt.Figure:
    """A measured and a simulated (1750,) model-input spectrum on the model grid, overlaid."""
    grid = model_grid()
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.plot(grid, measured, color="black", lw=1, label="measured (gas phase)")
    ax.plot(grid, simulated, color="tab:red", lw=1, alpha=0.8, label="GFN2-xTB, broadened")
    ax.set_xlabel("wavenumber / cm$^{-1}$")
    ax.set_ylabel("model input (min-max)")
    ax.set_xlim(grid[0], grid[-1])
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_architecture(config) -> plt.Figure:
    """The tri-modal model as boxes and arrows, labelled with `config`'s sizes."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    extra = " + mass" if config.mass else ""

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color,
                                    ec="0.3", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(x0, y0, x1, y1):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12,
                                     color="0.3", lw=1))

    rows = [
        (3.6, "molecular graph\n(SMILES → ETKDG 3-D)",
         f"DimeNet++\n{config.num_blocks} blocks, hidden {config.hidden_channels}\n"
         f"cutoff {config.cutoff_ang:g} Å → {config.out_channels}", "#cfe2f3"),
        (2.0, "IR spectrum\n500–4000 cm⁻¹, 1750 pts",
         f"MLP 1750 → {config.spectra_hidden}\n→ {config.spectra_out} (ELU, BatchNorm)", "#f4cccc"),
        (0.4, "Raman spectrum\n500–4000 cm⁻¹, 1750 pts",
         f"MLP 1750 → {config.spectra_hidden}\n→ {config.spectra_out} (ELU, BatchNorm)", "#d9d2e9"),
    ]
    for y, inp, enc, color in rows:
        box(0.1, y, 2.1, 0.8, inp, "white")
        arrow(2.3, y + 0.4, 2.9, y + 0.4)
        box(3.0, y, 2.4, 0.8, enc, color)
        arrow(5.5, y + 0.4, 6.1, y + 0.4)
        box(6.2, y, 2.0, 0.8, f"head{extra}\nLinear–GELU–Linear\n+ residual, LayerNorm", color)
        arrow(8.3, y + 0.4, 8.9, 2.4)
    box(9.0, 1.7, 1.9, 1.4, f"shared latent\nspace ({config.latent_dim}-d)\n\ncosine similarity,\n"
        "CLIP loss per pair", "#fff2cc")
    fig.tight_layout()
    return fig


def plot_reliability(tables: dict, title: str = "") -> plt.Figure:
    """Observed accuracy against predicted probability (one line per table of
    `rerank.reliability`: predicted, observed, queries), beside the diagonal of a calibrated
    confidence; marker areas follow the query counts."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="calibrated")
    for name, t in tables.items():
        n = int(t["queries"].sum())
        ax.plot(t["predicted"], t["observed"], marker="o", label=f"{name} ({n} queries)")
        ax.scatter(t["predicted"], t["observed"], s=4 * t["queries"], alpha=0.25)
    ax.set_xlabel("predicted probability that rank 1 is right")
    ax.set_ylabel("observed fraction right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return _finish(fig, ax, title)


def plot_theory_bars(cross, mode: str = IR_RAMAN, title: str = "") -> plt.Figure:
    """Grouped bars of `transfer.cross_theory_table`: top-1 % of each model (bars) for each kind
    of query (groups), with the 95 % bootstrap interval as error bars."""
    models = list(dict.fromkeys(cross.index.get_level_values(0)))
    queries = list(dict.fromkeys(cross.index.get_level_values(1)))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        top = [float(cross.loc[(model, q), (mode, "top1")]) for q in queries]
        lo_hi = [[float(v) for v in str(cross.loc[(model, q), (mode, "top1_ci")]).split("–")]
                 for q in queries]
        err = [[max(0.0, t - lh[0]) for t, lh in zip(top, lo_hi)],
               [max(0.0, lh[1] - t) for t, lh in zip(top, lo_hi)]]
        ax.bar(np.arange(len(queries)) + (k - (len(models) - 1) / 2) * width, top, width,
               yerr=err, capsize=3, label=model)
    ax.set_xticks(np.arange(len(queries)), [textwrap.fill(q, 20) for q in queries], fontsize=8)
    ax.set_ylabel("top-1 %")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
