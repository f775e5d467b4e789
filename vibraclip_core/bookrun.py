"""Execute the book's chapters with papermill: `python -m vibraclip_core.bookrun ...`.

The chapters are jupytext percent-format `.py` files; the ones run are those listed in `_toc.yml`.
Executed notebooks are build output (`book/<chapter>.ipynb`, git-ignored), rendered by jupyter-book
with execution off. A chapter is re-executed only when its source, the package or the data changed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path

from .config import REPO_ROOT

log = logging.getLogger(__name__)


def toc_chapters(toc: Path = REPO_ROOT / "_toc.yml") -> list[Path]:
    """Chapter sources (`book/*.py`) in the order `_toc.yml` lists them."""
    names = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", toc.read_text(), flags=re.M)
    return [REPO_ROOT / f"{n}.py" for n in names if (REPO_ROOT / f"{n}.py").exists()]


def _inputs_mtime(src: Path) -> float:
    deps = [src, *(REPO_ROOT / "vibraclip_core").glob("*.py"), *(REPO_ROOT / "data").rglob("*.npz")]
    return max(p.stat().st_mtime for p in deps)


def run_chapter(src: Path, out: Path, parameters: dict, prepare_only: bool = False) -> Path:
    """Convert a percent-format chapter to a notebook and execute it with papermill."""
    import os

    import jupytext
    import papermill

    # progress bars are for interactive runs; in a rendered page they are noise
    os.environ.setdefault("TQDM_DISABLE", "1")

    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.stem}.src.ipynb")
    jupytext.write(nb, staged)
    try:
        papermill.execute_notebook(str(staged), str(out), parameters=parameters, cwd=str(REPO_ROOT),
                                   prepare_only=prepare_only, progress_bar=False, kernel_name="python3")
    finally:
        staged.unlink(missing_ok=True)
    match_parameter_visibility(out)
    return out


def match_parameter_visibility(path: Path) -> None:
    """Give papermill's injected-parameters cell the `remove-cell` tag when the chapter hides
    its own parameters cell (the introduction): the page then shows neither."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tags = [cell.metadata.setdefault("tags", []) for cell in nb.cells]
    if any("parameters" in t and "remove-cell" in t for t in tags):
        for t in tags:
            if "injected-parameters" in t and "remove-cell" not in t:
                t.append("remove-cell")
        nbformat.write(nb, path)


def chapter_parameters(profile: str, build_dir: Path, relative: bool = True) -> dict[str, str]:
    """Parameters papermill injects. With `relative`, a build folder inside the repository is
    given relative to it (papermill runs chapters there), so rendered pages show `build`, not a
    machine's path; notebooks executed elsewhere later (nbval) need `relative=False`."""
    build = build_dir.resolve()
    try:
        shown = str(build.relative_to(REPO_ROOT.resolve())) if relative else str(build)
    except ValueError:
        shown = str(build)
    return {"profile": profile, "build_dir": shown}


def select_chapters(only: list[str] | None = None) -> list[Path]:
    """The `_toc.yml` chapters, or those whose name starts with one of `only` (e.g. "06")."""
    chapters = toc_chapters()
    if not only:
        return chapters
    chosen = [c for c in chapters if any(c.stem.startswith(o) for o in only)]
    unknown = [o for o in only if not any(c.stem.startswith(o) for c in chapters)]
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such chapter; the book has "
                         + ", ".join(c.stem for c in chapters))
    return chosen


def run_book(profile: str, out_dir: Path, build_dir: Path, force: bool = False,
             prepare_only: bool = False, only: list[str] | None = None) -> dict[str, float]:
    """Execute the chapters in `_toc.yml` (or the `only` ones); returns wall seconds per
    executed chapter. A chapter reads what earlier ones cached (e.g. Chapter 2's model) and
    trains or computes it itself when it is missing."""
    timings: dict[str, float] = {}
    for src in select_chapters(only):
        out = out_dir / f"{src.stem}.ipynb"
        if (not force and not prepare_only and out.exists()
                and out.stat().st_mtime > _inputs_mtime(src)):
            log.warning("%s is up to date", out.relative_to(REPO_ROOT))
            continue
        t0 = time.perf_counter()
        params = chapter_parameters(profile, build_dir, relative=not prepare_only)
        log.warning("executing %s (profile %s)", src.name, profile)
        run_chapter(src, out, params, prepare_only=prepare_only)
        timings[src.stem] = time.perf_counter() - t0
        log.warning("%s done in %.0f s", src.name, timings[src.stem])
        if not prepare_only:
            record_timing(build_dir, profile, src.stem, timings[src.stem])
    return timings


def record_timing(build_dir: Path, profile: str, chapter: str, seconds: float) -> Path:
    """Keep the wall time of the latest execution of each chapter in build/book-timings.json."""
    path = Path(build_dir) / "book-timings.json"
    table = json.loads(path.read_text()) if path.exists() else {}
    table.setdefault(profile, {})[chapter] = {"seconds": round(seconds, 1),
                                              "finished": time.strftime("%Y-%m-%d %H:%M")}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=2))
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--out", default=str(REPO_ROOT / "book"), help="folder for executed notebooks")
    p.add_argument("--build-dir", default=str(REPO_ROOT / "build"), help="artifacts and caches")
    p.add_argument("--force", action="store_true", help="execute even if up to date")
    p.add_argument("--prepare-only", action="store_true",
                   help="inject parameters without executing (for nbval)")
    p.add_argument("--only", nargs="+", metavar="CHAPTER",
                   help="execute only these chapters (name prefixes, e.g. 06 07)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        select_chapters(args.only)  # an unknown name fails before anything runs
    except ValueError as err:
        p.error(str(err))
    run_book(args.profile, Path(args.out), Path(args.build_dir), args.force, args.prepare_only,
             args.only)


if __name__ == "__main__":
    main()
