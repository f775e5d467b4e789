"""Command line: `vibraclip simulate ...` and later `train`, `identify`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def _simulate(args: argparse.Namespace) -> None:
    from .generate import generate_qm9, load_qm9_source, retry_failed

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
                        build_dir=args.build_dir, pair_loss=args.pair_loss)
    kwargs = {"accelerator": args.accelerator, "devices": args.devices}
    if args.strategy:
        kwargs["strategy"] = args.strategy
    result = train(config, retrain=args.retrain, trainer_kwargs=kwargs)
    best = final_metrics(result)
    print(f"checkpoint: {result.best_checkpoint}")
    print("best epoch " + ", ".join(f"{k}={v:.4g}" for k, v in best.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vibraclip", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-molecule failures")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="generate GFN2-xTB IR+Raman shards of QM9 (resumable)")
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
    tr.add_argument("--seed", type=int, default=None)
    tr.add_argument("--max-epochs", type=int, default=None)
    tr.add_argument("--data-dir", default=None, help="stick shards or a QM9S folder")
    tr.add_argument("--build-dir", default=None)
    tr.add_argument("--accelerator", default="auto", help="cpu, gpu, auto")
    tr.add_argument("--devices", default="auto", help="number of devices, e.g. 4")
    tr.add_argument("--strategy", default=None, help="e.g. ddp for several GPUs or nodes")
    tr.add_argument("--retrain", action="store_true", help="ignore a finished run")
    tr.set_defaults(func=_train)
    sheet = sub.add_parser("datasheet", help="refresh the generated tables of data/README.md")
    sheet.add_argument("--data", default="data/qm9_gfn2")
    sheet.add_argument("--readme", default="data/README.md")
    sheet.set_defaults(func=_datasheet)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
