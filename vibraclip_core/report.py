"""The ranked candidates of `identify.identify` as a user sees them: text, CSV/JSON, a PNG grid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rdkit import Chem


RESULT_SUFFIXES = (".csv", ".json")  # what write_results writes


def format_table(df: pd.DataFrame) -> str:
    """The ranked table as aligned text: rank, score (4 decimals), SMILES, formula, mass in Da."""
    shown = df.assign(score=df["score"].map(lambda s: f"{s:.4f}"),
                      mass_da=df["mass_da"].map(lambda m: f"{m:.3f}"))
    return shown.to_string(index=False)


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
