"""The torch-free front of `vibraclip identify`: its flag checks and reading the query spectra.

`cli` runs them before it imports the model stack, so a bad flag, a missing or unreadable file or
an unwritable output costs a fraction of a second and names its flag (or file) and the values
allowed, instead of waiting for torch to load; the notes on the files print at once."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from vibraclip_core.data.spectra import (Spectrum, SpectrumError, check_laser_nm,
                                         raman_intensity_to_activity)
from vibraclip_core.measured import readers
from vibraclip_core.measured.baseline import correct_baseline

RESULT_SUFFIXES = (".csv", ".json")  # what report.write_results writes


class FlagError(ValueError):
    """A flag value `vibraclip identify` cannot use; the message names the flag."""


def _existing_ancestor(path: Path) -> Path:
    """The nearest of path and its parents that exists (the folder a write would start from)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def _check_folder(flag: str, folder: Path, write: bool = False) -> None:
    """folder is a directory, or can be made one: nothing on its way is a file, and the folder
    it would be made in (or, with `write`, folder itself) is writable."""
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise FlagError(f"{flag} {folder}: {base} is a file, not a folder; give a folder path")
    if (write or base != folder) and not os.access(base, os.W_OK | os.X_OK):
        raise FlagError(f"{flag} {folder}: cannot write in {base} (permission denied); give a "
                        "writable path")


def _check_output(flag: str, value: str, suffixes: tuple[str, ...]) -> None:
    path = Path(value)
    if path.suffix.lower() not in suffixes:
        raise FlagError(f"{flag} {value}: unknown suffix {path.suffix!r}; use "
                        f"{' or '.join(suffixes)}")
    if path.is_dir():
        raise FlagError(f"{flag} {value}: is a folder; give a file name ending in "
                        f"{' or '.join(suffixes)}")
    # an existing file is overwritten: it must be writable itself, not only its folder
    if path.exists() and not os.access(path, os.W_OK):
        raise FlagError(f"{flag} {value}: the file exists and cannot be overwritten (permission "
                        "denied); give another file name or make it writable")
    _check_folder(flag, path.parent, write=True)


def check_identify_flags(args: argparse.Namespace, out_suffixes: tuple[str, ...]) -> None:
    """Raise FlagError for a flag of `vibraclip identify` that cannot work; `out_suffixes`: what
    `--out` may end in (report.RESULT_SUFFIXES)."""
    for flag, value in (("--batch-size", args.batch_size), ("--workers", args.workers),
                        ("--top", args.top)):
        if value < 1:
            raise FlagError(f"{flag} {value}: must be a whole number of at least 1")
    if args.rerank is not None and args.rerank < 0:
        raise FlagError(f"--rerank {args.rerank}: must be 0 (the model alone) or a number of "
                        "candidates to re-rank")
    if not (math.isfinite(args.mass_tol) and args.mass_tol >= 0):
        raise FlagError(f"--mass-tol {args.mass_tol}: must be a finite number of Da >= 0")
    if args.mass is not None and not (math.isfinite(args.mass) and args.mass > 0):
        raise FlagError(f"--mass {args.mass}: must be a positive number in Da")
    for flag, value in (("--laser-nm", args.laser_nm), ("--temperature-k", args.temperature_k)):
        if not (math.isfinite(value) and value > 0):
            raise FlagError(f"{flag} {value}: must be a positive number")
    try:
        check_laser_nm(args.laser_nm, "--laser-nm")
    except SpectrumError as exc:
        raise FlagError(str(exc)) from None
    _check_folder("--cache-dir", Path(args.cache_dir))
    if args.out:
        _check_output("--out", args.out, out_suffixes)
    if args.png:
        _check_output("--png", args.png, (".png",))


def check_input_files(args: argparse.Namespace) -> None:
    """Raise FlagError naming the flag of an input file that does not exist or is a folder
    (--ir, --raman, --checkpoint, and --candidates unless it is 'qm9')."""
    named = [("--ir", args.ir), ("--raman", args.raman), ("--checkpoint", args.checkpoint)]
    if args.candidates is not None and str(args.candidates).lower() != "qm9":
        named.append(("--candidates", args.candidates))
    for flag, value in named:
        if value is None:
            continue
        path = Path(value)
        if not path.exists():
            raise FlagError(f"{flag} {value}: file not found")
        if path.is_dir():
            raise FlagError(f"{flag} {value}: is a folder; give a file")


def read_queries(args: argparse.Namespace) -> tuple[Spectrum | None, Spectrum | None]:
    """(IR, Raman) query spectra of `args`: read, baseline-corrected (`--baseline`), measured
    Raman put on the activity scale; prints each file's notes (unit conversions, filled ranges,
    duplicates) as it goes."""
    ir = readers.read_spectrum(args.ir, args.ir_y) if args.ir else None
    raman = (readers.read_spectrum(args.raman, args.raman_y, raman=True) if args.raman
             else None)
    baseline = getattr(args, "baseline", "none")
    ir = correct_baseline(ir, baseline) if ir is not None else None
    raman = correct_baseline(raman, baseline) if raman is not None else None
    if raman is not None and not args.raman_activity:  # measured: intensity -> activity
        raman = raman_intensity_to_activity(raman, args.laser_nm, args.temperature_k)
    for spectrum in (ir, raman):
        for note in spectrum.notes if spectrum is not None else ():
            print(f"note: {spectrum.source}: {note}")
    return ir, raman
