"""Execute the book's chapters with papermill: `python -m vibraclip_core.app.bookrun ...`.

The chapters are jupytext percent-format `.py` files; the ones run are those listed in `_toc.yml`.
Executed notebooks are build output (`book/<chapter>.ipynb`, git-ignored), rendered by jupyter-book
with execution off. A chapter is re-executed only when its source, the package or the data changed,
or when a chapter it reads from (PREREQUISITES) is re-executed.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from vibraclip_core.config.choices import DEFAULT_PROFILE
from vibraclip_core.config.profiles import PROFILES, REPO_ROOT

log = logging.getLogger(__name__)


def toc_chapters(toc: Path = REPO_ROOT / "_toc.yml") -> list[Path]:
    """Chapter sources (`book/*.py`) in the order `_toc.yml` lists them."""
    names = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", toc.read_text(), flags=re.M)
    return [REPO_ROOT / f"{n}.py" for n in names if (REPO_ROOT / f"{n}.py").exists()]


def _inputs_mtime(src: Path) -> float:
    deps = [src, *(REPO_ROOT / "vibraclip_core").rglob("*.py"), *(REPO_ROOT / "data").rglob("*.npz")]
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
    fold_injected_parameters(out)
    return out


def fold_injected_parameters(path: Path) -> None:
    """Write the values papermill injected into the chapter's own `parameters` cell and drop
    papermill's `injected-parameters` cell, so the page shows the parameters once, with the
    values this run used (and hides them where the chapter hides its parameters cell)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    own = [i for i, t in enumerate(tags) if "parameters" in t]
    if not injected or not own:
        return
    cell = nb.cells[own[0]]
    cell.source = with_assignments(cell.source, nb.cells[injected[0]].source)
    for i in reversed(injected):
        del nb.cells[i]
    nbformat.write(nb, path)


def with_assignments(source: str, assignments: str) -> str:
    """`source` with each top-level `name = value` that `assignments` also sets given the value
    there (its text as written); names `source` lacks are appended."""
    lines = source.splitlines()
    given = {node.targets[0].id: ast.get_source_segment(assignments, node.value)
             for node in ast.parse(assignments).body
             if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    seen = set()
    for node in reversed(ast.parse(source).body):
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in given):
            name = node.targets[0].id
            lines[node.lineno - 1:node.end_lineno] = [f"{name} = {given[name]}"]
            seen.add(name)
    lines += [f"{name} = {value}" for name, value in given.items() if name not in seen]
    return "\n".join(lines)


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


# What each chapter reads from earlier ones (by name prefix); with `jobs` > 1, chapters whose
# prerequisites are done run side by side. Chapters not listed wait for every earlier chapter.
# Chapter 5 shares trained runs with Chapters 2 and 4 but reads none of their outputs: a run
# two chapters ask for is trained once (train's run lock) and loaded by the other, so 05 needs
# only the data and can take the lane Chapter 2 frees while 03 -> 04 still train.
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "intro": (), "01": (), "02": ("01",), "03": ("01",), "04": ("03",), "05": ("01",),
    "06": ("02",), "07": ("06",),
}

# Among chapters ready at once, these start first, in this order: the longest first (their
# `cpu` times), so that the short 06 -> 07 -> 08 tail fills the end of a lane. Ready together
# after 01: 02 and 03 (05 then waits for a lane: it also reads the runs 02 and 04 train);
# after 03: 05 before 04; after 02: 04 before 06.
START_FIRST: tuple[str, ...] = ("02", "03", "05", "04", "06")


def start_rank(stem: str) -> int:
    """Sort key among ready chapters: START_FIRST's order, then every other chapter."""
    return next((k for k, p in enumerate(START_FIRST) if stem.startswith(p)), len(START_FIRST))


def prerequisites(chapters: list[Path]) -> dict[str, set[str]]:
    """{chapter stem: stems among `chapters` it must wait for} (see PREREQUISITES)."""
    stems = [c.stem for c in chapters]
    out = {}
    for k, stem in enumerate(stems):
        key = next((p for p in PREREQUISITES if stem.startswith(p)), None)
        wanted = stems[:k] if key is None else [s for s in stems[:k]
                                                if any(s.startswith(p) for p in PREREQUISITES[key])]
        out[stem] = set(wanted)
    return out


def run_book(profile: str, out_dir: Path, build_dir: Path, force: bool = False,
             prepare_only: bool = False, only: list[str] | None = None,
             jobs: int = 1) -> dict[str, float]:
    """Execute the chapters in `_toc.yml` (or the `only` ones); returns wall seconds per
    executed chapter. A chapter reads what earlier ones cached (e.g. Chapter 2's model) and
    trains or computes it itself when it is missing. With `jobs` > 1, up to `jobs` chapters
    whose prerequisites are done run at once, each kernel with cores // jobs threads (two
    one-thread trainings do ~1.2-1.4x the work of one two-thread training on 2 cores)."""
    chapters = select_chapters(only)
    reads_from = prerequisites(chapters)
    todo = {}
    for src in chapters:
        out = out_dir / f"{src.stem}.ipynb"
        # a chapter whose prerequisite runs again reads new results (e.g. Chapter 2's model)
        if (not force and not prepare_only and not reads_from[src.stem] & set(todo)
                and out.exists() and out.stat().st_mtime > _inputs_mtime(src)):
            log.warning("%s is up to date", out)
            continue
        todo[src.stem] = (src, out)
    if not prepare_only:
        record_timing(build_dir, profile, "_run", 0.0, started=time.time(), jobs=jobs)
    if jobs > 1:
        threads = str(max(1, (os.cpu_count() or jobs) // jobs))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read by each kernel at start
            os.environ[var] = threads
    waits = prerequisites([src for src, _ in todo.values()])
    timings: dict[str, float] = {}

    def execute(stem: str) -> None:
        src, out = todo[stem]
        t0 = time.perf_counter()
        params = chapter_parameters(profile, build_dir, relative=not prepare_only)
        log.warning("executing %s (profile %s)", src.name, profile)
        run_chapter(src, out, params, prepare_only=prepare_only)
        timings[stem] = time.perf_counter() - t0
        log.warning("%s done in %.0f s", src.name, timings[stem])
        if not prepare_only:
            record_timing(build_dir, profile, stem, timings[stem])

    pending, running = dict(waits), {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            ready = [s for s, w in pending.items() if not w & (set(pending) | set(running.values()))]
            for stem in sorted(ready, key=start_rank):
                if len(running) < max(1, jobs):
                    running[pool.submit(execute, stem)] = stem
                    del pending[stem]
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stem = running.pop(future)
                if future.exception() is not None:  # a failed chapter stops the book
                    for other in running:
                        other.cancel()
                    raise RuntimeError(f"chapter {stem} failed") from future.exception()
    return timings


_TIMINGS_LOCK = threading.Lock()


def record_timing(build_dir: Path, profile: str, chapter: str, seconds: float,
                  **extra: float) -> Path:
    """Keep the wall time of the latest execution of each chapter in build/book-timings.json
    ("_run" holds when the latest `run_book` started and with how many jobs)."""
    path = Path(build_dir) / "book-timings.json"
    with _TIMINGS_LOCK:
        table = json.loads(path.read_text()) if path.exists() else {}
        table.setdefault(profile, {})[chapter] = {"seconds": round(seconds, 1),
                                                  "finished": time.strftime("%Y-%m-%d %H:%M"),
                                                  **extra}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=2))
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    p.add_argument("--out", default=str(REPO_ROOT / "book"), help="folder for executed notebooks")
    p.add_argument("--build-dir", default=str(REPO_ROOT / "build"), help="artifacts and caches")
    p.add_argument("--force", action="store_true", help="execute even if up to date")
    p.add_argument("--prepare-only", action="store_true",
                   help="inject parameters without executing (for nbval)")
    p.add_argument("--only", nargs="+", metavar="CHAPTER",
                   help="execute only these chapters (name prefixes, e.g. 06 07)")
    p.add_argument("--jobs", type=int, default=1,
                   help="chapters executed side by side when their prerequisites are done")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        select_chapters(args.only)  # an unknown name fails before anything runs
    except ValueError as err:
        p.error(str(err))
    run_book(args.profile, Path(args.out), Path(args.build_dir), args.force, args.prepare_only,
             args.only, args.jobs)


if __name__ == "__main__":
    main()
