from pathlib import Path

import pytest

from vibraclip_core.bookrun import chapter_parameters, select_chapters, toc_chapters
from vibraclip_core.config import REPO_ROOT


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


def test_injected_parameters_follow_the_visibility_of_the_parameters_cell(tmp_path):
    import nbformat

    from vibraclip_core.bookrun import match_parameter_visibility

    def tags_after(param_tags):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("p = 1", metadata={"tags": param_tags}),
                    nbformat.v4.new_code_cell("p = 2", metadata={"tags": ["injected-parameters"]}),
                    nbformat.v4.new_code_cell("x = p")]
        path = tmp_path / "ch.ipynb"
        nbformat.write(nb, path)
        match_parameter_visibility(path)
        return [c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells]

    assert tags_after(["parameters"])[1] == ["injected-parameters"]
    assert tags_after(["parameters", "remove-cell"]) == [
        ["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]


def test_only_selects_chapters_by_prefix_in_book_order_and_rejects_unknown_names():
    assert [c.stem for c in select_chapters(["07", "06"])] == ["06_realignment", "07_gallery"]
    assert select_chapters(None) == toc_chapters()
    with pytest.raises(ValueError, match="99.*no such chapter"):
        select_chapters(["06", "99"])
