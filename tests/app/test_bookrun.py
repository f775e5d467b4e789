import json
import os
from pathlib import Path

import pytest

from vibraclip_core.app.bookrun import chapter_parameters, select_chapters, toc_chapters
from vibraclip_core.config.profiles import REPO_ROOT


def test_build_dir_is_shown_relative_inside_the_repository_and_absolute_outside(tmp_path):
    assert chapter_parameters("cpu", REPO_ROOT / "build") == {"profile": "cpu",
                                                              "build_dir": "build"}
    assert chapter_parameters("tiny", REPO_ROOT / "build" / "tiny")["build_dir"] == "build/tiny"
    assert chapter_parameters("tiny", REPO_ROOT / "build", relative=False)["build_dir"] == str(
        (REPO_ROOT / "build").resolve())
    outside = chapter_parameters("paper", tmp_path / "scratch")["build_dir"]
    assert Path(outside).is_absolute() and outside.endswith("scratch")


def test_toc_chapters_are_the_book_sources_in_reading_order():
    names = [p.stem for p in toc_chapters()]
    assert names[0] == "intro" and names.index("01_data") < names.index("07_gallery")
    assert "gpu" not in names  # markdown pages are rendered, not executed


def test_injected_values_are_folded_into_the_parameters_cell_which_is_shown_once(tmp_path):
    import nbformat

    from vibraclip_core.app.bookrun import fold_injected_parameters

    def folded(param_tags, own="p = 1\nxs = [1,\n      2]  # a list\nq = 'a'"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("# title"),
                    nbformat.v4.new_code_cell(own, metadata={"tags": param_tags}),
                    nbformat.v4.new_code_cell("# Parameters\np = 2\nxs = [3]\nnew = None\n",
                                              metadata={"tags": ["injected-parameters"]}),
                    nbformat.v4.new_code_cell("x = p")]
        path = tmp_path / "ch.ipynb"
        nbformat.write(nb, path)
        fold_injected_parameters(path)
        return nbformat.read(path, as_version=4).cells

    cells = folded(["parameters"])
    assert [c.source for c in cells[1:]] == ["p = 2\nxs = [3]\nq = 'a'\nnew = None", "x = p"]
    assert cells[1].metadata.tags == ["parameters"]
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in cells)
    hidden = folded(["parameters", "remove-cell"], own="p = 1")
    assert [(c.source, c.metadata.get("tags")) for c in hidden[1:]] == [
        ("p = 2\nxs = [3]\nnew = None", ["parameters", "remove-cell"]), ("x = p", None)]
    namespace = {}
    exec(cells[1].source, namespace)  # the folded cell still runs
    assert namespace["xs"] == [3] and namespace["q"] == "a"


def test_only_selects_chapters_by_prefix_in_book_order_and_rejects_unknown_names():
    assert [c.stem for c in select_chapters(["07", "06"])] == ["06_realignment", "07_gallery"]
    assert select_chapters(None) == toc_chapters()
    with pytest.raises(ValueError, match="99.*no such chapter"):
        select_chapters(["06", "99"])


def test_parallel_chapters_start_only_after_their_prerequisites(tmp_path, monkeypatch):
    import threading
    import time

    from vibraclip_core.app import bookrun as B

    events, lock = [], threading.Lock()

    def fake_run(src, out, params, prepare_only=False):
        with lock:
            events.append(("start", src.stem))
        time.sleep(0.05 if src.stem.startswith(("02", "03")) else 0.01)
        with lock:
            events.append(("end", src.stem))
        return out

    monkeypatch.setattr(B, "run_chapter", fake_run)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # run_book sets them; undo afterwards
        monkeypatch.setenv(var, "0")
    timings = B.run_book("tiny", tmp_path / "nb", tmp_path / "build", force=True, jobs=2)
    stems = [c.stem for c in toc_chapters()]
    assert set(timings) == set(stems)
    order = {(kind, stem): k for k, (kind, stem) in enumerate(events)}
    waits = B.prerequisites(toc_chapters())
    for stem, before in waits.items():
        for b in before:
            assert order[("end", b)] < order[("start", stem)], (b, stem)
    # 02 and 03 only need 01: they overlap
    assert order[("start", "03_loss_ablations")] < order[("end", "02_pretraining")]
    assert waits["08_summary"] == set(stems[:-1])  # unlisted chapters wait for all earlier ones
    assert int(os.environ["OMP_NUM_THREADS"]) >= 1
    run = json.loads((tmp_path / "build" / "book-timings.json").read_text())["tiny"]["_run"]
    assert run["jobs"] == 2 and run["started"] <= time.time()


def test_a_failing_chapter_stops_the_book(tmp_path, monkeypatch):
    from vibraclip_core.app import bookrun as B

    def fake_run(src, out, params, prepare_only=False):
        if src.stem.startswith("01"):
            raise RuntimeError("cell error")
        return out

    monkeypatch.setattr(B, "run_chapter", fake_run)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "0")
    with pytest.raises(RuntimeError, match="chapter 01_data failed"):
        B.run_book("tiny", tmp_path / "nb", tmp_path / "build", force=True, jobs=2)


def test_the_longest_ready_chapter_takes_a_free_lane_first(tmp_path, monkeypatch):
    import threading
    import time

    from vibraclip_core.app import bookrun as B

    starts, lock = [], threading.Lock()

    def fake_run(src, out, params, prepare_only=False):
        with lock:
            starts.append(src.stem)
        # 03 holds one lane while 02 ends: then 05 and 06 are both ready for the other lane
        time.sleep(0.3 if src.stem.startswith("03") else 0.02)
        return out

    monkeypatch.setattr(B, "run_chapter", fake_run)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "0")
    B.run_book("tiny", tmp_path / "nb", tmp_path / "build", force=True, jobs=2)
    # 05's two trainings first; the short 06 -> 07 -> 08 tail then fills the other lane's end
    assert starts.index("05_missing_data") < starts.index("06_realignment")
    ready = ["06_realignment", "07_gallery", "04_mass_anchoring", "05_missing_data"]
    assert sorted(ready, key=B.start_rank) == ["05_missing_data", "04_mass_anchoring",
                                               "06_realignment", "07_gallery"]
    # after Chapter 1: 02 and 03 take the two lanes, 05 waits
    assert sorted(["05_missing_data", "03_loss_ablations", "02_pretraining"],
                  key=B.start_rank)[:2] == ["02_pretraining", "03_loss_ablations"]


def test_a_chapter_runs_again_when_a_chapter_it_reads_from_does(tmp_path, monkeypatch):
    from vibraclip_core.app import bookrun as B

    ran = []

    def fake_run(src, out, params, prepare_only=False):
        ran.append(src.stem)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("{}")
        return out

    monkeypatch.setattr(B, "run_chapter", fake_run)
    B.run_book("tiny", tmp_path / "nb", tmp_path / "build", force=True)
    assert sorted(ran) == sorted(c.stem for c in toc_chapters())
    ran.clear()
    # only Chapter 2's source changed: it runs, then every chapter that reads from it
    monkeypatch.setattr(B, "_inputs_mtime",
                        lambda src: float("inf") if src.stem.startswith("02") else 0.0)
    B.run_book("tiny", tmp_path / "nb", tmp_path / "build")
    assert sorted(ran) == ["02_pretraining", "06_realignment", "07_gallery", "08_summary"]
