"""Elements, molecular formulas and atomic masses: the package's one element set and one parser.

Formulas of RDKit molecules come from RDKit (`molecules.molecular_formula`, CalcMolFormula); this
module parses formula *strings* (a user's `--formula`, a JCAMP ##MOLFORM header) with one parser,
and writes formulas in RDKit's Hill order, also of molecules given only as atoms (QM9 structures
RDKit cannot parse still have atoms), so a query's formula and a candidate's compare as plain
strings. Masses are RDKit's average atomic weights, as Descriptors.MolWt uses.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from rdkit import Chem

ELEMENTS = ("H", "C", "N", "O", "F")  # the elements the package simulates and embeds

_PERIODIC = Chem.GetPeriodicTable()
ATOMIC_NUMBER = {e: _PERIODIC.GetAtomicNumber(e) for e in ELEMENTS}  # {"H": 1, ..., "F": 9}
# GFN2-xTB's parameterisation ends at Rn, so the simulator never needs heavier masses
_ATOMIC_WEIGHTS = np.array([0.0] + [_PERIODIC.GetAtomicWeight(z) for z in range(1, 87)])
# every element symbol, so an unknown one is refused here, before RDKit logs a C++ error for it
_SYMBOLS = frozenset(_PERIODIC.GetElementSymbol(z) for z in range(1, 119))

_LOCANTS = re.compile(r"^[\d,]+-")  # '1,2-( C H3)2 C6 H4': a locant prefix, not a count
_SPACED_COUNT = re.compile(r"([A-Z][a-z]?)\s+(\d)")  # 'C 4 H 8'
_GROUP = re.compile(r"\(([^()]*)\)(\d*)")
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


class FormulaError(ValueError):
    """A formula string that cannot be parsed; the message quotes it."""


def atomic_masses(numbers: np.ndarray) -> np.ndarray:
    """(n_atoms,) float64 average atomic weights in amu (RDKit's) of atomic numbers 1..86."""
    return _ATOMIC_WEIGHTS[np.asarray(numbers, dtype=int)]


def mass_of_numbers(numbers: np.ndarray) -> float:
    """Average molecular mass in Da of a molecule given by its atomic numbers (n_atoms,)."""
    return float(sum(_PERIODIC.GetAtomicWeight(int(z)) for z in numbers))


def _tokens(text: str, formula: str) -> list[tuple[str, str]]:
    tokens = _TOKEN.findall(text)
    if "".join(e + n for e, n in tokens) != text:
        raise FormulaError(f"formula {formula!r}: not a formula like 'C2H6O' (element symbols "
                           "and counts, optionally spaced or with groups; no charges)")
    return tokens


def parse_formula(formula: str) -> dict[str, int]:
    """Element counts of a formula, condensed ('C2H6O') or as JCAMP headers write it.

    Handles 'C2 H6 O', 'C 4 H 8', 'C H3 C O C H3', 'C H2: C H C N', '1,2-( C H3)2 C6 H4' and
    '( C H3)3 C O C2 H5' (locant prefixes dropped, parenthesised groups multiplied). Anything
    else (charges, stray characters, an empty string, a zero count as in 'C0H4', a symbol that
    is no element as in 'Xx2') raises FormulaError.
    """
    s = _LOCANTS.sub("", formula.strip())
    s = re.sub(r"\s+", "", _SPACED_COUNT.sub(r"\1\2", s).replace(":", " "))
    while "(" in s:
        s = _GROUP.sub(lambda m: "".join(f"{e}{int(n or 1) * int(m.group(2) or 1)}"
                                         for e, n in _tokens(m.group(1), formula)), s)
    tokens = _tokens(s, formula)
    if not tokens:
        raise FormulaError(f"formula {formula!r}: no elements")
    counts: Counter = Counter()
    for element, n in tokens:
        if element in ("D", "T"):  # not in the periodic table's symbols, but meant as isotopes
            raise FormulaError(f"formula {formula!r}: {element!r} is "
                               f"{'deuterium' if element == 'D' else 'tritium'}; isotopes are "
                               "not supported: the model knows natural-abundance molecules of "
                               f"{', '.join(ELEMENTS)} only")
        if element not in _SYMBOLS:
            raise FormulaError(f"formula {formula!r}: unknown element {element!r}; write "
                               "element symbols as the periodic table does ('Cl', not 'CL')")
        if n and int(n) == 0:
            raise FormulaError(f"formula {formula!r}: zero count for {element!r}; leave out "
                               "elements the molecule does not contain")
        counts[element] += int(n or 1)
    return dict(counts)


def unknown_elements(formula: str) -> list[str]:
    """The elements of a formula outside ELEMENTS, as 'Cl (chlorine)', in Hill order."""
    counts = parse_formula(formula)
    return [f"{e} ({_PERIODIC.GetElementName(_PERIODIC.GetAtomicNumber(e)).lower()})"
            for e in _hill_order(counts) if e not in ELEMENTS]


def _hill_order(counts: dict[str, int]) -> list[str]:
    # RDKit's CalcMolFormula order: C, H, then alphabetical; H first also without carbon
    return [e for e in ("C", "H") if e in counts] + sorted(set(counts) - {"C", "H"})


def hill_string(counts: dict[str, int]) -> str:
    """'C2H6O' from {"O": 1, "C": 2, "H": 6}, in RDKit's Hill order (counts of 1 omitted)."""
    return "".join(e + (str(counts[e]) if counts[e] > 1 else "") for e in _hill_order(counts))


def hill_formula(formula: str) -> str:
    """Hill-order formula ('OC2H6' -> 'C2H6O', 'FH' -> 'HF') as RDKit's CalcMolFormula writes it."""
    return hill_string(parse_formula(formula))


def formula_mass_da(formula: str) -> float:
    """Average molecular mass in Da of a formula (RDKit atomic weights, as Descriptors.MolWt)."""
    counts = parse_formula(formula)  # refuses unknown elements
    return sum(_PERIODIC.GetAtomicWeight(e) * counts[e] for e in _hill_order(counts))


def hill_formulas(z: np.ndarray, atom_offsets: np.ndarray) -> list[str]:
    """Hill formula of each of n molecules from atomic numbers z (atoms,) grouped by atom_offsets
    (n + 1,), as `molecules.molecular_formula` writes it for a neutral molecule ('C2H6O')."""
    z = np.asarray(z, dtype=np.int64)
    n = len(atom_offsets) - 1
    width = int(z.max()) + 1 if len(z) else 1
    molecule = np.repeat(np.arange(n), np.diff(atom_offsets))
    counts = np.bincount(molecule * width + z, minlength=n * width).reshape(n, width)
    # QM9 holds a few thousand distinct compositions: format each once
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    text = [hill_string({_PERIODIC.GetElementSymbol(int(e)): int(row[e])
                         for e in np.flatnonzero(row)}) for row in unique]
    return [text[i] for i in inverse.reshape(-1)]
