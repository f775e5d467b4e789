"""The model that ships in `models/`: export from a training run, load without training.

`vibraclip identify` uses it when no `--checkpoint` is given. The folder holds the weights
(safetensors, float16: half the size, and the retrieval numbers of the card are measured on the
float16 weights as shipped), the run's config, its training mass statistics and a model card whose
numbers the export computed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from safetensors.torch import save_file

from vibraclip_core.config.profiles import REPO_ROOT
from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.mass import MASS_STATS_FILE, MassStats, mass_stats_for
from vibraclip_core.model.checkpoints import load_model
from vibraclip_core.model.exported import (CONFIG_FILE, MANIFEST_FILE, MODELS_DIR, WEIGHTS_FILE,
                                           ShippedModelError, load_shipped_model, manifest)
from vibraclip_core.model.manifest import damaged_files, file_sha256
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.rerank import RERANK_FILE, Reranker

CARD_FILE = "MODEL_CARD.md"


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The checked-out commit (with '-dirty' for uncommitted changes), or 'unknown'."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def export_model(checkpoint: str | Path, out_dir: str | Path = MODELS_DIR,
                 provenance: dict[str, str] | None = None) -> Path:
    """Write `checkpoint`'s model to out_dir as float16 safetensors + config + mass statistics +
    manifest (sha256, provenance); returns the weights' path. Writes each file atomically."""
    checkpoint, out = Path(checkpoint), Path(out_dir)
    model = load_model(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    weights = out / WEIGHTS_FILE
    _atomic(weights, lambda p: save_file(state, p, metadata={"format": "pt"}))
    config = model.config.replace(init_checkpoint=None)
    _atomic(out / CONFIG_FILE, lambda p: config.write_json(p))
    files = {WEIGHTS_FILE: weights}
    if model.config.mass:
        stats = mass_stats_for(checkpoint)
        _atomic(out / MASS_STATS_FILE, lambda p: p.write_text(json.dumps(
            {"mass_mean_da": stats.mean_da, "mass_std_da": stats.std_da}, indent=2)))
        files[MASS_STATS_FILE] = out / MASS_STATS_FILE
    manifest = {"sha256": {n: file_sha256(p) for n, p in files.items()},
                "commit": git_commit(), "source_checkpoint": str(checkpoint),
                **(provenance or {})}
    _atomic(out / MANIFEST_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2)))
    return weights


def _atomic(path: Path, write) -> None:
    """Write a versioned file (readable by everyone, like the rest of the repository)."""
    with atomic_path(path, mode=0o644) as tmp:
        write(tmp)


def check_integrity(folder: str | Path = MODELS_DIR) -> list[str]:
    """Names of shipped files whose sha256 differs from the manifest's (empty when intact)."""
    return damaged_files(folder)


def model_from(checkpoint: str | Path | None) -> tuple[VibraCLIP, MassStats | None, str]:
    """(model, mass statistics, description): a Lightning checkpoint, a shipped-model folder or
    weights file, or (None) the shipped default model."""
    if checkpoint is None:
        model, stats = load_shipped_model()
        return model, stats, f"shipped model ({MODELS_DIR})"
    path = Path(checkpoint)
    if path.is_dir() or path.suffix == ".safetensors":
        model, stats = load_shipped_model(path if path.is_dir() else path.parent)
        return model, stats, str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    model = load_model(path)
    return model, (mass_stats_for(path) if model.config.mass else None), str(path)


def write_model_card(folder: str | Path, info: dict[str, str], tables: dict[str, str]) -> Path:
    """MODEL_CARD.md from provenance `info` (label -> value) and result `tables` (title ->
    Markdown table), all computed by the export run; returns its path."""
    folder = Path(folder)
    lines = ["# VibraCLIP default model", "",
             "The model `vibraclip identify` uses when no `--checkpoint` is given. Everything "
             "below was written by `vibraclip export-model`; every number was measured by that "
             "run on the float16 weights as shipped.", "", "## How it was made", ""]
    lines += [f"- **{k}:** {v}" for k, v in info.items()]
    for title, table in tables.items():
        lines += ["", f"## {title}", "", table]
    lines += ["", "## Scope", "",
              "Trained on simulated spectra (*training spectra* above) of small QM9 molecules (H, "
              "C, N, O, F; up to nine heavy atoms). Spectra of larger molecules, other elements, "
              "solids or solutions lie "
              "outside what it has seen; give `--formula` or `--mass` to narrow the candidates "
              "whenever you know them.", ""]
    path = folder / CARD_FILE
    _atomic(path, lambda p: p.write_text("\n".join(lines)))
    return path


# the provenance key of rerank.json naming the weights it was chosen for
RERANK_WEIGHTS_KEY = "weights sha256"


def shipped_reranker(depth: int | None = None, folder: str | Path = MODELS_DIR
                     ) -> Reranker | None:
    """The shipped re-ranking (`rerank.json`, chosen by `vibraclip calibrate-rerank`) with
    `depth` candidates (None: the shipped depth); None for depth 0. ShippedModelError when the
    file is missing or unreadable, or was chosen for other weights than the folder holds."""
    if depth == 0:
        return None
    path = Path(folder) / RERANK_FILE
    if not path.is_file():
        raise ShippedModelError(f"{path}: missing; run `vibraclip calibrate-rerank` or pass "
                                "--rerank 0 for the model alone")
    try:
        reranker = Reranker.load(path)
    except ValueError as exc:
        raise ShippedModelError(str(exc)) from exc
    chosen_for, holds = reranker.provenance.get(RERANK_WEIGHTS_KEY), weights_sha256(folder)
    if chosen_for and holds and chosen_for != holds:
        raise ShippedModelError(
            f"{path}: chosen for the weights {chosen_for[:12]}…, but {Path(folder)} holds "
            f"{holds[:12]}…; run `vibraclip calibrate-rerank --out {folder}` for these weights, "
            "or pass --rerank 0 for the model alone")
    if depth is not None:
        reranker.depth = depth
    return reranker


def weights_sha256(folder: str | Path = MODELS_DIR) -> str | None:
    """The sha256 of an exported model's weights, from its manifest (None: no manifest)."""
    has_manifest = (Path(folder) / MANIFEST_FILE).is_file()
    return manifest(folder)["sha256"].get(WEIGHTS_FILE) if has_manifest else None
