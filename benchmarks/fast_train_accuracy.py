"""Accuracy of the training paths (`fast_train`: bf16, float32, exact) against each other: the
book's main model, trained each way on the same data, split, seed and epoch budget, evaluated
the same way (float32).

Prints, side by side, the wall time of each training, the best epoch's validation top-1 and the
test-split top-1 with the 95 % bootstrap intervals Chapter 2 prints. The path `auto` takes on this
machine is the one the book uses (tag "main", same build folder), so running this first also
trains Chapter 2's model.

Usage: python benchmarks/fast_train_accuracy.py [--profile cpu] [--build-dir build]
       [--paths on,float32,off]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import pandas as pd

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.retrieval.evaluate import evaluate
from vibraclip_core.training.train import final_metrics, load_model, train
from vibraclip_core.training.training_path import PATH_NAMES, training_path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--profile", default="cpu")
    p.add_argument("--build-dir", default="build")
    p.add_argument("--paths", default="on,float32,off", help="fast_train values, comma list")
    args = p.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    config = get_config(args.profile, build_dir=args.build_dir)
    data = prepare(config)
    columns = {}
    auto = training_path(config).fast_train
    for fast in args.paths.split(","):
        name = PATH_NAMES[fast] + (" (auto here)" if fast == auto else "")
        cfg = config.replace(fast_train=fast)
        t0 = time.perf_counter()
        result = train(cfg, data, tag="main", trainer_kwargs={"enable_progress_bar": False})
        seconds = time.perf_counter() - t0
        best = final_metrics(result)
        table = evaluate(load_model(result.best_checkpoint, expected=cfg), data, "test",
                         cfg.build_dir, seed=cfg.seed).table
        col = {"run": result.run_dir.name, "epochs": len(result.history),
               "wall s": round(seconds),
               "best epoch": int(best["epoch"]),
               "val top-1 IR": round(100 * best["val_top1_ir"], 1),
               "val top-1 IR+Raman": round(100 * best["val_top1_ir_raman"], 1)}
        for mode in table.index:
            col[f"test top-1 {mode}"] = (f"{table.loc[mode, 'top1']:.1f} "
                                         f"({table.loc[mode, 'top1_ci']})")
        columns[f"{name} (fast_train={fast})"] = col
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(pd.DataFrame(columns))


if __name__ == "__main__":
    main()
