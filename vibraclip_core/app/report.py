"""The ranked candidates of `identify.identify` as a user sees them: text, CSV/JSON, a PNG grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from vibraclip_core.app.identify_flags import RESULT_SUFFIXES  # what write_results writes
from vibraclip_core.data.spectra import model_grid
from vibraclip_core.retrieval.rerank import ALL_CANDIDATES, MAX_FALSE_NONE, SIMULATE_TOP
from vibraclip_core.retrieval.spectral_match import aligned_query, best_factors, candidate_matrix




def format_table(df: pd.DataFrame) -> str:
    """The ranked table as aligned text: rank, scores (model score 4 decimals; re-ranked tables
    also the spectrum match and the fused score, blank below the shortlist), SMILES, formula,
    mass in Da."""
    def fmt(digits: int):
        return lambda v: "" if pd.isna(v) else f"{v:.{digits}f}"
    shown = df.assign(score=df["score"].map(fmt(4)), mass_da=df["mass_da"].map(fmt(3)))
    for col in ("match", "fused"):
        if col in shown:
            shown[col] = df[col].map(fmt(3))
    shown = shown.rename(columns={"score": "model score"} if "fused" in df else {})
    return shown.to_string(index=False)


def fusion_text(df: pd.DataFrame, weight: float, depth: int) -> str:
    """One line on which candidates were fused and where their simulated spectra came from."""
    n, a = df.attrs["n_reranked"], df.attrs
    who = (f"fused: all {n:,} admissible candidates" if depth <= ALL_CANDIDATES
           else f"re-ranked: the model's top {n:,}")
    simulated = a.get("n_simulated", 0)
    on_disk = (n - simulated - a.get("not_simulated", 0)
               - sum(a["simulation_failures"].values()))
    parts = [f"{on_disk:,} on disk", f"{simulated:,} simulated now"]
    if a.get("not_simulated"):
        parts.append(f"{a['not_simulated']:,} without one (outside the model's top "
                     f"{SIMULATE_TOP}: match counted neutral)")
    if a["simulation_failures"]:
        parts.append(f"failed: {a['simulation_failures']} (match counted neutral)")
    return (f"{who} by fused score = z(model score) + {weight:g} z(spectrum match) (GFN2-xTB "
            f"spectra of the candidates: {'; '.join(parts)})")


def confidence_text(df: pd.DataFrame) -> str:
    """One line on how far rank 1 can be trusted, or that no candidate fits (re-ranked tables
    only); the probability only where it was calibrated (IR-only queries, a re-ranking file
    with the open-set fit)."""
    p = df.attrs["confidence"]
    if not df.attrs.get("confidence_calibrated", True):
        return ("confidence: not calibrated for this query (it was fitted on IR-only queries); "
                "judge the top candidates' spectra (--png)")
    if df.attrs.get("none_fits"):
        return (f"no candidate fits: match and margin look like those of validation queries "
                f"whose molecule was not among the candidates (a flag raised for "
                f"{MAX_FALSE_NONE:.0%} of those whose molecule was there); probability that "
                f"rank 1 is right: {p:.2f}. Widen --candidates, or check the spectrum (--png)")
    verdict = ("a confident answer" if p >= 0.8 else "likely, check the runner-up" if p >= 0.5
               else "a guess: check the top candidates' spectra (--png)")
    return (f"confidence that rank 1 is right: {p:.2f} ({verdict}; calibrated on pseudo-measured "
            "validation queries of other levels of theory, not on measured spectra)")


def write_results(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the ranked table as .csv or .json (a list of records) by the suffix of path."""
    path = Path(path)
    if path.suffix.lower() not in RESULT_SUFFIXES:
        raise ValueError(f"{path}: unknown output suffix {path.suffix!r}; use "
                         f"{' or '.join(RESULT_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        path.write_text(df.to_json(orient="records", indent=2))
    return path


def draw_overlay(df: pd.DataFrame, queries: dict, settings, path: str | Path, n: int = 6
                 ) -> Path:
    """PNG: the query (as compared: baseline removed, compressed, axis aligned to the candidate)
    over each of the top n re-ranked candidates' simulated spectra, one panel per candidate, its
    structure drawn in the corner. queries: {"ir" | "raman": ((1750,) values, (1750,) mask)}."""
    import matplotlib  # plotting pulls in matplotlib: only when a picture is asked for
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rdkit.Chem import Draw

    sims, order = df.attrs["spectra"]
    rows = df.head(min(n, df.attrs["n_reranked"]))
    kinds = list(queries)
    fig, axes = plt.subplots(len(rows), len(kinds), figsize=(7 * len(kinds), 1.9 * len(rows)),
                             squeeze=False, sharex=True)
    grid = model_grid()
    sticks = {"ir": sims.ir_km_mol, "raman": sims.raman_a4_amu}
    for r, (k, row) in enumerate(zip(order[:len(rows)], rows.itertuples())):
        one = slice(int(sims.offsets[k]), int(sims.offsets[k + 1]))
        for c, kind in enumerate(kinds):
            ax = axes[r, c]
            q, m = queries[kind]
            cand = candidate_matrix(np.array([0, one.stop - one.start]), sims.freqs_cm1[one],
                                    sticks[kind][one], settings)
            factors = best_factors(q[None], m[None], cand, settings)[0]
            ax.plot(grid, aligned_query(q, m, tuple(factors), settings), color="black", lw=1,
                    label=f"query ({kind}; wavenumbers / {factors[0]:.3f}, / {factors[1]:.3f} "
                          "above 2,500 cm⁻¹)")
            ax.fill_between(grid, cand[0], color="tab:orange", alpha=0.45,
                            label="simulated (GFN2-xTB)")
            ax.set_title(f"{row.rank}. {row.smiles}   match {row.match:.3f}, fused "
                         f"{row.fused:.2f}", fontsize=9, loc="left")
            ax.set_yticks([])
            ax.legend(fontsize=7, loc="upper left", frameon=False)
            image = Draw.MolToImage(Chem.MolFromSmiles(row.smiles), size=(140, 140))
            inset = ax.inset_axes([0.86, 0.05, 0.14, 0.9])
            inset.imshow(np.asarray(image))
            inset.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("wavenumber / cm⁻¹ (the candidate's axis)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_grid(df: pd.DataFrame, path: str | Path, n: int = 12, per_row: int = 4) -> Path:
    """PNG grid of the top n structures, each labelled 'rank. score'."""
    from rdkit.Chem import Draw  # drawing pulls in PIL: only when a grid is asked for

    rows = df.head(n)
    if rows.empty:
        raise ValueError(f"{path}: no candidates to draw")
    mols = [Chem.MolFromSmiles(s) for s in rows["smiles"]]
    legends = [f"{r}. {s:.3f}" for r, s in zip(rows["rank"], rows["score"])]
    img = Draw.MolsToGridImage(mols, molsPerRow=min(per_row, len(mols)), subImgSize=(250, 250),
                               legends=legends)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(img, "save"):
        img.save(path, format="PNG")
    else:  # inside IPython RDKit may hand back an IPython.display.Image holding PNG bytes
        path.write_bytes(img.data)
    return path
