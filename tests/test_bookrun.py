import nbformat

from vibraclip_core.bookrun import hide_injected_parameters, toc_chapters


def test_injected_parameters_cell_is_hidden_and_the_rest_untouched(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'cpu'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("profile = 'tiny'",
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "ch.ipynb"
    nbformat.write(nb, path)
    hide_injected_parameters(path)
    hide_injected_parameters(path)  # idempotent
    tags = [c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells]
    assert tags == [["parameters"], ["injected-parameters", "remove-cell"], []]


def test_toc_chapters_are_the_book_sources_in_reading_order():
    names = [p.stem for p in toc_chapters()]
    assert names[0] == "intro" and names.index("01_data") < names.index("07_gallery")
    assert "gpu" not in names  # markdown pages are rendered, not executed
