"""The torch-free front of `vibraclip identify`: its flag checks and reading the query spectra.

`cli` runs them before it imports the model stack, so a bad flag, a missing or unreadable file or
an unwritable output costs a fraction of a second and names its flag (or file) and the values
allowed, instead of waiting for torch to load; the notes on the files print at once."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable

from vibraclip_core.config.loss_modes import LOSS_MODES, uses_raman
from vibraclip_core.data.spectra import (Spectrum, SpectrumError, check_laser_nm,
                                         raman_intensity_to_activity, spectrum_to_model_input)
from vibraclip_core.measured import readers
from vibraclip_core.measured.baseline import correct_baseline
from vibraclip_core.measured.quality import quality_warnings
from vibraclip_core.model.manifest import (MODELS_DIR, WEIGHTS_FILE, ShippedModelError,
                                           exported_config, verify_exported)

RESULT_SUFFIXES = (".csv", ".json")  # what report.write_results writes


class FlagError(ValueError):
    """A flag value `vibraclip identify` cannot use; the message names the flag."""


def _existing_ancestor(path: Path) -> Path:
    """The nearest of path and its parents that exists (the folder a write would start from)."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def check_folder(flag: str, folder: Path, write: bool = False, shown: str | None = None) -> None:
    """folder is a directory, or can be made one: nothing on its way is a file, and the folder
    it would be made in (or, with `write`, folder itself) is writable. Writability is tried by
    creating (and removing) a file there: permission bits say nothing of /proc, read-only mounts
    or root. `shown`: the flag's value in the message (default: folder)."""
    shown = str(folder) if shown is None else shown
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise FlagError(f"{flag} {shown}: {base} is a file, not a folder; give a folder path")
    if write or base != folder:
        why = "permission denied"
        ok = os.access(base, os.W_OK | os.X_OK)
        if ok:
            try:
                with tempfile.TemporaryFile(dir=base, prefix=".vibraclip-write-check-"):
                    pass
            except OSError as exc:
                ok, why = False, exc.strerror or type(exc).__name__
        if not ok:
            raise FlagError(f"{flag} {shown}: cannot write in {base} ({why}); give a "
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
    check_folder(flag, path.parent, write=True, shown=value)


def check_identify_flags(args: argparse.Namespace, out_suffixes: tuple[str, ...]) -> None:
    """Raise FlagError for a flag of `vibraclip identify` that cannot work; `out_suffixes`: what
    `--out` may end in (report.RESULT_SUFFIXES)."""
    if not (args.ir or args.raman):
        raise FlagError("--ir/--raman: no spectrum given; give the measured IR spectrum with "
                        "--ir FILE and/or the Raman spectrum with --raman FILE")
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
    check_folder("--cache-dir", Path(args.cache_dir))
    if args.out:
        _check_output("--out", args.out, out_suffixes)
    if args.png:
        _check_output("--png", args.png, (".png",))


def check_input_files(args: argparse.Namespace) -> None:
    """Raise FlagError naming the flag of an input file that does not exist or is a folder
    (--ir, --raman, --checkpoint, and --candidates unless it is 'qm9'), of a candidate file
    without a SMILES line, and of an exported model (--checkpoint folder or .safetensors, or
    the shipped one) that is damaged or needs --mass/--formula that were not given."""
    named = [("--ir", args.ir), ("--raman", args.raman), ("--checkpoint", args.checkpoint)]
    if args.candidates is not None and str(args.candidates).lower() != "qm9":
        named.append(("--candidates", args.candidates))
    for flag, value in named:
        if value is None:
            continue
        path = Path(value)
        if not path.exists():
            raise FlagError(f"{flag} {value}: file not found")
        if path.is_dir() and not (flag == "--checkpoint" and (path / WEIGHTS_FILE).is_file()):
            raise FlagError(f"{flag} {value}: is a folder" + (
                f" without {WEIGHTS_FILE}; give an exported model folder (as models/) or a "
                "trained .ckpt file" if flag == "--checkpoint" else "; give a file"))
    if args.candidates is not None and str(args.candidates).lower() != "qm9":
        _check_candidate_file(args.candidates)
    folder = exported_folder(args.checkpoint)
    if folder is not None:
        try:
            verify_exported(folder)
        except ShippedModelError as exc:
            raise FlagError(f"--checkpoint {args.checkpoint}: {exc}" if args.checkpoint
                            else f"the shipped model: {exc}") from None
        config = exported_config(folder) or {}
        model = f"--checkpoint {args.checkpoint}" if args.checkpoint else "the shipped model"
        loss = config.get("loss")
        if args.raman and loss in LOSS_MODES and not uses_raman(loss):
            raman_modes = " or ".join(repr(n) for n, m in LOSS_MODES.items() if m.uses_raman)
            raise FlagError(f"--raman {args.raman}: {model} was trained with loss={loss!r}, so "
                            f"its Raman encoder was never trained; drop --raman or use a model "
                            f"trained with loss {raman_modes}")
        if config.get("mass") and args.mass is None and args.formula is None:
            raise FlagError(f"--mass/--formula: {model} was trained with mass anchoring, so the "
                            "query needs its molecular mass; give --mass in Da, or --formula "
                            "(e.g. C2H6O) from which the mass is computed")


def exported_folder(checkpoint: str | None) -> Path | None:
    """The exported model folder `--checkpoint` names (a folder, or its .safetensors weights),
    models/ when it is not given, None for a Lightning .ckpt."""
    if checkpoint is None:
        return MODELS_DIR
    path = Path(checkpoint)
    if path.is_dir():
        return path
    return path.parent if path.suffix == ".safetensors" else None


def _check_candidate_file(value: str) -> None:
    """A candidate file must hold a line that is not blank and not a '#' comment (the SMILES
    themselves are parsed, with RDKit, after the model loads)."""
    try:
        with open(value, encoding="utf-8", errors="replace") as fh:
            has_line = any(ln.strip() and not ln.strip().startswith("#") for ln in fh)
    except OSError as exc:
        raise FlagError(f"--candidates {value}: cannot be read ({exc.strerror})") from None
    if not has_line:
        raise FlagError(f"--candidates {value}: no SMILES in the file (it is empty or holds only "
                        "blank and '#' lines); give one SMILES per line, or --candidates qm9")


def read_queries(args: argparse.Namespace, printed: dict[int, int] | None = None
                 ) -> tuple[Spectrum | None, Spectrum | None]:
    """(IR, Raman) query spectra of `args`: read, baseline-corrected (`--baseline`), checked for
    a slope, noise and water/CO2 bands (`quality.quality_warnings`), measured Raman put on the
    activity scale, and put on the model grid once so that the notes of that step (filled
    ranges, y below 0) exist too; prints every note. `printed` (spectrum id -> notes printed)
    is filled in for `print_notes` to show later notes."""
    ir = readers.read_spectrum(args.ir, args.ir_y) if args.ir else None
    raman = (readers.read_spectrum(args.raman, args.raman_y, raman=True) if args.raman
             else None)
    baseline = getattr(args, "baseline", "none")
    if ir is not None:
        ir = correct_baseline(ir, baseline)
        ir.notes.extend(quality_warnings(ir, baseline, "--ir"))
    if raman is not None:
        raman = correct_baseline(raman, baseline)
        raman.notes.extend(quality_warnings(raman, baseline, "--raman"))
        if not args.raman_activity:  # measured: intensity -> activity
            raman = raman_intensity_to_activity(raman, args.laser_nm, args.temperature_k)
    for spectrum in (ir, raman):
        if spectrum is not None:
            spectrum_to_model_input(spectrum)  # its notes now, not after the model loaded
    print_notes((ir, raman), {} if printed is None else printed)
    return ir, raman


def print_notes(spectra: Iterable[Spectrum | None], printed: dict[int, int]) -> None:
    """Print the notes of each spectrum not printed yet (`printed`: id -> count, updated), so a
    note appended by a later step is shown too."""
    for spectrum in spectra:
        if spectrum is None:
            continue
        done = printed.get(id(spectrum), 0)
        for note in spectrum.notes[done:]:
            print(f"note: {spectrum.source}: {note}")
        printed[id(spectrum)] = len(spectrum.notes)
