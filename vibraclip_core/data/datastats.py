"""Descriptive statistics of a stick-spectra set: failures, composition, agreement with the
reference (B3LYP) frequencies, and the generated datasheet tables in data/README.md."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from vibraclip_core.data.datasets import StickSet
from vibraclip_core.data.molecules import mol_from_smiles
from vibraclip_core.data.simulate import STATUS_OK

DATASHEET_BEGIN = "<!-- BEGIN GENERATED: vibraclip datasheet -->"
DATASHEET_END = "<!-- END GENERATED -->"


def status_table(sticks: StickSet) -> pd.DataFrame:
    """Molecules per simulator status, with percentages of all attempted."""
    counts = Counter(str(s) for s in sticks.status)
    df = pd.DataFrame({"status": list(counts), "molecules": list(counts.values())})
    df["percent"] = 100.0 * df["molecules"] / max(len(sticks), 1)
    df["ok_first"] = df["status"] != STATUS_OK
    df = df.sort_values(["ok_first", "molecules"], ascending=[True, False]).drop(columns="ok_first")
    return df.reset_index(drop=True)


def frequency_pairs(sticks: StickSet) -> tuple[np.ndarray, np.ndarray]:
    """Sorted reference and GFN2 frequencies paired mode by mode (cm-1), ok molecules whose mode
    counts agree; returns (ref_cm1, ours_cm1), both (n_modes,)."""
    ref, ours = [], []
    for m in range(len(sticks)):
        if sticks.status[m] != STATUS_OK:
            continue
        f = np.sort(sticks.sticks(m)[0])
        r = np.sort(sticks.ref_freqs(m))
        if len(f) == len(r) and len(f):
            ref.append(r)
            ours.append(f)
    if not ref:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(ref).astype(float), np.concatenate(ours).astype(float)


def frequency_agreement(ref_cm1: np.ndarray, ours_cm1: np.ndarray,
                        min_cm1: float = 500.0) -> dict[str, float]:
    """MAD, mean signed shift, Pearson r and least-squares scale factor (ours * s ~ ref) over
    modes with reference frequency >= min_cm1 (the range the model sees)."""
    keep = ref_cm1 >= min_cm1
    r, o = ref_cm1[keep], ours_cm1[keep]
    return {
        "modes": int(keep.sum()),
        "mad_cm1": float(np.abs(o - r).mean()),
        "mean_shift_cm1": float((o - r).mean()),
        "pearson_r": float(np.corrcoef(r, o)[0, 1]),
        "scale_factor": float((o @ r) / (o @ o)),
        "mad_after_scaling_cm1": float(np.abs(o * (o @ r) / (o @ o) - r).mean()),
    }


def composition(smiles: list[str]) -> tuple[np.ndarray, np.ndarray, Counter, np.ndarray]:
    """(n_atoms, n_heavy_atoms, element Counter over all atoms, mass_da) from SMILES."""
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    n_atoms, n_heavy, mass = [], [], []
    elements: Counter = Counter()
    for s in smiles:
        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        symbols = [a.GetSymbol() for a in mol.GetAtoms()]
        elements.update(symbols)
        n_atoms.append(len(symbols))
        n_heavy.append(sum(e != "H" for e in symbols))
        mass.append(Descriptors.MolWt(mol))
    return np.array(n_atoms), np.array(n_heavy), elements, np.array(mass)


def find_examples(sticks: StickSet, patterns: dict[str, str],
                  windows: dict[str, tuple[str, float, float]]) -> dict[str, int]:
    """First ok molecule matching each SMARTS whose strongest IR band lies in its window; falls
    back to the first SMARTS match. Keys absent from the result had no match."""
    from rdkit import Chem

    found: dict[str, int] = {}
    for key, smarts in patterns.items():
        query = Chem.MolFromSmarts(smarts)
        _, lo, hi = windows[key]
        first = None
        for m in range(len(sticks)):
            mol = Chem.MolFromSmiles(sticks.smiles[m])
            if sticks.status[m] != STATUS_OK or mol is None or not mol.HasSubstructMatch(query):
                continue
            first = m if first is None else first
            f, ir, _ = sticks.sticks(m)
            in_range = (f >= 500) & (f <= 4000)
            if in_range.any() and lo <= f[in_range][np.argmax(ir[in_range])] <= hi:
                found[key] = m
                break
        if key not in found and first is not None:
            found[key] = first
    return found


def render_datasheet_tables(sticks: StickSet) -> str:
    """Markdown tables (counts, failures, timing, agreement) for the datasheet, from the shards."""
    ok = sticks.status == STATUS_OK
    secs = sticks.seconds[ok]
    has_ref = len(sticks.ref_freqs_cm1) > 0
    agree = frequency_agreement(*frequency_pairs(sticks)) if has_ref else {}
    lines = [
        f"Shards: {len(sticks.shard_files)} files "
        f"({sticks.shard_files[0]} … {sticks.shard_files[-1]}).", "",
        "| quantity | value |", "|---|---|",
        f"| molecules attempted | {len(sticks)} |",
        f"| molecules with status ok | {int(ok.sum())} |",
        f"| failure rate | {100 * (1 - ok.mean()):.2f} % |",
        f"| simulator wall seconds per ok molecule (median; one process per core) | {np.median(secs):.2f} |",
        f"| simulator seconds per ok molecule (mean) | {secs.mean():.2f} |",
        f"| vibrational modes stored | {int(sticks.offsets[-1])} |",
    ]
    if has_ref:
        m = sticks.method.split("-")[0]
        lines += [
            f"| {m} − B3LYP mean shift, modes ≥ 500 cm⁻¹ | {agree['mean_shift_cm1']:.1f} cm⁻¹ |",
            f"| {m} vs B3LYP mean absolute deviation | {agree['mad_cm1']:.1f} cm⁻¹ |",
            f"| {m} vs B3LYP Pearson r | {agree['pearson_r']:.4f} |"]
    else:
        heavy = np.array([mol_from_smiles(s).GetNumHeavyAtoms() for s in sticks.smiles])
        lines += [f"| atoms per molecule incl. H (median, max) | {int(np.median(sticks.n_atoms))}, "
                  f"{int(sticks.n_atoms.max())} |",
                  f"| heavy atoms (min–max) | {heavy.min()}–{heavy.max()} |"]
    lines += ["", "| status | molecules | percent |", "|---|---|---|"]
    for row in status_table(sticks).itertuples():
        lines.append(f"| {row.status} | {row.molecules} | {row.percent:.2f} |")
    return "\n".join(lines)


REGIONS_CM1 = {"below 1,500 cm⁻¹": (0.0, 1500.0), "1,500–2,500 cm⁻¹": (1500.0, 2500.0),
               "above 2,500 cm⁻¹ (X–H stretches)": (2500.0, 1e9)}


def theory_comparison(other: StickSet, reference: StickSet) -> pd.DataFrame:
    """How `other`'s level of theory differs from `reference`'s on the molecules both hold (ok,
    same mode count; modes paired in frequency order), by region of the reference frequency:
    modes, median and 5-95 % range of the frequency ratio, and the Pearson r of log10 IR
    intensities and of log10 Raman activities."""
    row_of = {int(i): r for r, i in enumerate(reference.index) if reference.status[r] == STATUS_OK}
    pairs = {k: [] for k in ("f_ref", "f_other", "ir_ref", "ir_other", "ra_ref", "ra_other")}
    for m in range(len(other)):
        r = row_of.get(int(other.index[m]))
        if other.status[m] != STATUS_OK or r is None:
            continue
        (fo, io, ro), (fr, ir_, rr) = other.sticks(m), reference.sticks(r)
        if len(fo) != len(fr):
            continue
        a, b = np.argsort(fr), np.argsort(fo)
        for key, v in zip(pairs, (fr[a], fo[b], ir_[a], io[b], rr[a], ro[b])):
            pairs[key].append(v)
    v = {k: np.concatenate(x) if x else np.zeros(0) for k, x in pairs.items()}
    rows = []
    for name, (lo, hi) in REGIONS_CM1.items():
        sel = (v["f_ref"] >= lo) & (v["f_ref"] < hi) & (v["f_ref"] > 0) & (v["f_other"] > 0)
        ratio = v["f_other"][sel] / v["f_ref"][sel]

        def logr(a, b):
            x, y = np.log10(a[sel] + 1e-3), np.log10(b[sel] + 1e-3)
            return float(np.corrcoef(x, y)[0, 1]) if sel.sum() > 2 else float("nan")
        rows.append({"region": name, "modes": int(sel.sum()),
                     "median ratio": float(np.median(ratio)) if sel.any() else np.nan,
                     "ratio 5–95 %": (f"{np.quantile(ratio, 0.05):.3f}–"
                                      f"{np.quantile(ratio, 0.95):.3f}") if sel.any() else "",
                     "r log IR": logr(v["ir_ref"], v["ir_other"]),
                     "r log Raman": logr(v["ra_ref"], v["ra_other"])})
    return pd.DataFrame(rows).set_index("region")


def update_datasheet(readme: Path, sticks: StickSet, compare_with: StickSet | None = None
                     ) -> bool:
    """Rewrite the generated block of a datasheet in place (with `compare_with`, also the
    `theory_comparison` table against that set); returns whether it changed."""
    text = Path(readme).read_text()
    if DATASHEET_BEGIN not in text or DATASHEET_END not in text:
        raise ValueError(f"{readme}: missing the markers {DATASHEET_BEGIN!r} … {DATASHEET_END!r}")
    head, rest = text.split(DATASHEET_BEGIN, 1)
    _, tail = rest.split(DATASHEET_END, 1)
    body = render_datasheet_tables(sticks)
    if compare_with is not None:
        table = theory_comparison(sticks, compare_with).round(4)
        body += (f"\n\n{sticks.method} against {compare_with.method} on the same molecules "
                 "(modes paired in frequency order; ratio = this set / the other):\n\n"
                 + table.to_markdown())
    new = f"{head}{DATASHEET_BEGIN}\n{body}\n{DATASHEET_END}{tail}"
    if new != text:
        Path(readme).write_text(new)
    return new != text
