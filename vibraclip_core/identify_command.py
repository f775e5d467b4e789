"""`vibraclip identify`: its flag checks (run before the model and the library are loaded: a bad
value costs no model load, no library embedding, and names its flag and the values allowed), then
the run as the command line shows it: notes, model, library, filters, the ranked (and re-ranked)
table, the confidence, and the files asked for; `cli.main` ends a failure in one error line.
`cli` imports this module only when `identify` runs, so `vibraclip --help` needs no torch."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from . import candidates, identify, library_cache, readers
from .report import (RESULT_SUFFIXES, confidence_text, draw_grid, draw_overlay, format_table,
                     write_results)
from .shipped import model_from, shipped_reranker
from .spectra import (SpectrumError, check_laser_nm, raman_intensity_to_activity,
                      spectrum_to_model_input)
from .spectral_match import coverage_mask


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


def run_identify(args: argparse.Namespace) -> None:
    """Run `vibraclip identify` with parsed `args`; `cli.main` ends a failure in one line."""
    # before the model and the library: a bad flag costs nothing
    check_identify_flags(args, RESULT_SUFFIXES)
    model, stats, model_name = model_from(args.checkpoint)
    ir = readers.read_spectrum(args.ir, args.ir_y) if args.ir else None
    raman = (readers.read_spectrum(args.raman, args.raman_y, raman=True) if args.raman
             else None)
    if raman is not None and not args.raman_activity:  # measured: intensity -> activity
        raman = raman_intensity_to_activity(raman, args.laser_nm, args.temperature_k)
    identify.check_query(model, ir, raman, args.mass, args.formula, args.top)  # before the library
    # 'qm9': the first query computes the QM9 conformers missing from the shared cache and
    # embeds all of QM9 (progress bars); later ones read the cached library
    candidate_set = candidates.load_candidates(args.candidates)
    library = library_cache.build_library(model, candidate_set, stats, args.cache_dir,
                                          workers=args.workers, batch_size=args.batch_size)
    reranker = shipped_reranker(args.rerank)
    df = identify.identify(model, library, ir, raman, mass_da=args.mass,
                           mass_tol_da=args.mass_tol, formula=args.formula, top=args.top,
                           reranker=reranker, cache_dir=args.cache_dir, workers=args.workers)
    for spectrum in (ir, raman):  # unit conversions, filled ranges, duplicates
        for note in spectrum.notes if spectrum is not None else ():
            print(f"note: {spectrum.source}: {note}")
    skipped = ", ".join(f"{k}={v}" for k, v in sorted(library.skipped.items())) or "none"
    print(f"model: {model_name}")
    print(f"library: {len(library)} candidates from {args.candidates} "
          f"(skipped {sum(library.skipped.values())}: {skipped})")
    if library.skipped.get("stereoisomer"):
        print(f"note: {library.skipped['stereoisomer']} stereoisomer(s) merged with the first "
              "listed form: the model drops stereochemistry (E/Z, R/S), so they rank as one")
    if df.attrs["filters"]:
        print(f"filter: {' and '.join(df.attrs['filters'])} kept "
              f"{df.attrs['n_candidates']} of {len(library)} candidates")
    reranked = "confidence" in df.attrs
    if reranked:
        failed = df.attrs["simulation_failures"]
        print(f"re-ranked: the model's top {df.attrs['n_reranked']} by fused score = "
              f"z(model score) + {reranker.weight:g} z(spectrum match) (GFN2-xTB spectra of "
              "the candidates" + (f"; not simulated: {failed}, match counted neutral)"
                                 if failed else ")"))
    print(format_table(df))
    if reranked:
        print(confidence_text(df))
    if args.out:
        print(f"wrote {write_results(df, args.out)}")
    if args.png:
        queries = {k: (spectrum_to_model_input(sp), coverage_mask(sp))
                   for k, sp in (("ir", ir), ("raman", raman)) if sp is not None}
        drawn = (draw_overlay(df, queries, reranker.settings, args.png) if reranked
                 else draw_grid(df, args.png))
        print(f"wrote {drawn}")
