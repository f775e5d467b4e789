"""Which stick augmentations to pretrain with: decided on the validation split, never on measured data.

Trains the book's main `cpu` model without augmentation, with the transfer set
(`augment.TRANSFER`: band positions and widths) and with every transform (`augment.TRANSFORMS`:
also intensities, baselines, noise and instrument cut-offs), then prints validation and test
top-1 / top-10 for GFN2 queries and for cross-theory queries (QM9's B3LYP frequencies, GFN2
intensities). Runs already in the build folder are loaded, not retrained (each is ~10 minutes on
2 cores). The transfer set is the one with the best validation cross-theory IR + Raman top-1.

    .venv/bin/python benchmarks/augmentation_choice.py [--build-dir build]
"""

from __future__ import annotations

import argparse

import pandas as pd

from vibraclip_core import augment as A
from vibraclip_core.config import get_config
from vibraclip_core.datasets import prepare
from vibraclip_core.evaluate import evaluate
from vibraclip_core.train import load_model, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build")
    args = p.parse_args()
    variants = {"none": (), "transfer (positions, widths)": A.TRANSFER, "all transforms": A.TRANSFORMS}
    base = get_config("cpu", build_dir=args.build_dir)
    data = prepare(base)
    sticks = A.stick_source(base.data_path)
    cross = A.cross_theory_data(data, sticks, base.fwhm_cm1)
    rows = {}
    for name, transforms in variants.items():
        cfg = base.replace(augment=transforms)
        model = load_model(train(cfg, data, tag="main",
                                 trainer_kwargs={"enable_progress_bar": False}).best_checkpoint)
        for split in ("val", "test"):
            for queries, d in (("GFN2", data), ("B3LYP", cross)):
                t = evaluate(model, d, split, args.build_dir).table
                for mode in ("ir", "ir+raman library"):
                    rows[(name, split, queries, mode)] = t.loc[mode, ["top1", "top10"]]
    table = pd.DataFrame(rows).T.round(1)
    table.index.names = ["augmentation", "split", "queries", "query"]
    print(table.to_string())
    val = table.xs(("val", "B3LYP", "ir+raman library"), level=(1, 2, 3))["top1"]
    print(f"\nbest validation cross-theory IR + Raman top-1: {val.idxmax()} ({val.max():.1f} %)")


if __name__ == "__main__":
    main()
