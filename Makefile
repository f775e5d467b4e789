# Two entry points: `make book` and `make test` (see README.md).
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed-stamp

.PHONY: book test notebooks html setup clean data experimental model

setup: $(STAMP)

# torch first, pinned: an open torch requirement resolved on a fresh machine pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[book,test]"
	touch $@

# Measured IR spectra (jcamp's sdist on PyPI): fetched into build/cache, never committed.
experimental: $(STAMP)
	$(PY) -c "from vibraclip_core.measured.experimental import fetch_jcamp_spectra as f; print(f())"

# Execute every chapter of _toc.yml under the cpu profile (skips up-to-date ones; two chapters
# side by side where they do not depend on each other: one thread each does more work), render.
book: $(STAMP) experimental
	$(PY) -m vibraclip_core.app.bookrun --profile cpu --jobs 2
	.venv/bin/jupyter-book build . --quiet
	@echo "Book: _build/html/index.html"

# The layers' import contracts (pyproject.toml), unit tests, and every chapter under the tiny
# profile, executed by nbval.
test: $(STAMP) experimental
	.venv/bin/lint-imports
	rm -rf build/test-notebooks
	$(PY) -m vibraclip_core.app.bookrun --profile tiny --prepare-only \
	    --out build/test-notebooks --build-dir build/tiny
	$(PY) -m pytest tests build/test-notebooks --nbval-lax -p no:cacheprovider

# The shipped default model (models/): the transfer cpu run that Chapter 6 evaluates (loaded
# from build/ when it was trained there, trained otherwise), exported as float16 safetensors;
# then identify's re-ranking is chosen for these weights on validation queries of other
# theories, and the model card is measured on the weights as shipped with that re-ranking.
# Commit models/ afterwards.
model: $(STAMP) experimental
	$(PY) -m vibraclip_core.app.cli export-model --profile cpu --transfer
	$(PY) -m vibraclip_core.app.cli calibrate-rerank --out models
	$(PY) -m vibraclip_core.app.cli export-model --card-only --out models

# Extend the embedded dataset (resumable): make data SHARDS=60
SHARDS ?= 48
data: $(STAMP)
	$(PY) -m vibraclip_core.app.cli simulate --out data/qm9_gfn2 --shards $(SHARDS) --workers 2

clean:
	rm -rf _build build book/*.ipynb
