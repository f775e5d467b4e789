"""An exported model's files and their integrity, without torch: the names of the files in an
exported folder (`models/` ships one), its manifest (sha256 of each shipped file, provenance),
and the check that the files are the ones the manifest names.

`exported.load_shipped_model` verifies a folder before it reads a weight, and `vibraclip
identify` verifies it before torch is imported, so damaged weights (zeroed blocks, flipped bits)
are named as damaged files, never run, and never taken for a training that diverged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vibraclip_core.config.profiles import REPO_ROOT

MODELS_DIR = REPO_ROOT / "models"
WEIGHTS_FILE = "vibraclip.safetensors"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"


class ShippedModelError(ValueError):
    """The shipped model folder is missing, incomplete, damaged or does not fit this code."""


def _restore_hint(folder: Path) -> str:
    shipped = folder.resolve() == MODELS_DIR.resolve()
    return ("restore it with `git checkout -- models/`" if shipped else
            f"copy the folder again from an intact export, or re-export it with `vibraclip "
            f"export-model --out {folder}`")


def manifest(folder: str | Path = MODELS_DIR) -> dict:
    """The exported model's manifest (hashes, commit, command, run); ShippedModelError naming
    the file when it is missing or unreadable."""
    path = Path(folder) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShippedModelError(
            f"{path}: missing, so the weights in {Path(folder)} cannot be checked against "
            f"their sha256; {_restore_hint(Path(folder))}") from None
    except (OSError, ValueError) as exc:
        raise ShippedModelError(f"{path}: unreadable ({exc}); "
                                f"{_restore_hint(Path(folder))}") from None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), dict):
        raise ShippedModelError(f"{path}: holds no sha256 table of the shipped files; "
                                f"{_restore_hint(Path(folder))}")
    return data


def exported_run(folder: str | Path = MODELS_DIR) -> str | None:
    """The run folder name (`<tag>-<config hash>-<data hash>`) the exported model was trained
    as, from its manifest; None when the folder has no manifest or it names no run."""
    path = Path(folder) / MANIFEST_FILE
    return json.loads(path.read_text()).get("run") if path.is_file() else None


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damaged_files(folder: str | Path = MODELS_DIR) -> list[str]:
    """Names of the manifest's files whose sha256 differs from the manifest's (or that are
    missing); empty when intact. ShippedModelError when the manifest is missing."""
    folder = Path(folder)
    return [name for name, digest in manifest(folder)["sha256"].items()
            if not (folder / name).is_file() or file_sha256(folder / name) != digest]


def verify_exported(folder: str | Path = MODELS_DIR) -> None:
    """Raise ShippedModelError, naming the file and what to do, when the folder's manifest is
    missing, does not list the weights, or a listed file's sha256 differs from it."""
    folder = Path(folder)
    table = manifest(folder)["sha256"]
    if WEIGHTS_FILE not in table:
        raise ShippedModelError(f"{folder / MANIFEST_FILE}: lists no sha256 for {WEIGHTS_FILE}; "
                                f"{_restore_hint(folder)}")
    for name, digest in table.items():
        path = folder / name
        if not path.is_file():
            raise ShippedModelError(f"{path}: missing; the exported model is incomplete; "
                                    f"{_restore_hint(folder)}")
        actual = file_sha256(path)
        if actual != digest:
            raise ShippedModelError(
                f"{path}: damaged or changed since export (sha256 {actual[:12]}…, "
                f"{MANIFEST_FILE} says {digest[:12]}…); {_restore_hint(folder)}")


def exported_config(folder: str | Path = MODELS_DIR) -> dict | None:
    """The exported model's config.json as a dict (None when absent or unreadable: the model
    loader reports that)."""
    try:
        data = json.loads((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
