"""`vibraclip identify`: its flag checks (run before the model and the library are loaded: a bad
value costs no model load, no library embedding, and names its flag and the values allowed), then
the run as the command line shows it: notes, model, library, filters, the ranked (and re-ranked)
table, the confidence, and the files asked for; `cli.main` ends a failure in one error line.
`cli` imports this module only when `identify` runs, so `vibraclip --help` needs no torch."""

from __future__ import annotations

import argparse
import contextlib
from typing import Iterator

from vibraclip_core.app import identify
from vibraclip_core.app.identify_flags import (FlagError, check_identify_flags, print_notes,
                                               read_queries)
from vibraclip_core.app.report import (RESULT_SUFFIXES, confidence_text, draw_grid,
                                       draw_overlay, format_table, fusion_text, write_results)
from vibraclip_core.app.shipped import model_from, shipped_reranker
from vibraclip_core.data.spectra import Spectrum, spectrum_to_model_input
from vibraclip_core.retrieval import candidates
from vibraclip_core.retrieval import library_cache
from vibraclip_core.retrieval.spectral_match import coverage_mask


def run_identify(args: argparse.Namespace, queries: tuple[Spectrum | None, Spectrum | None]
                 | None = None, printed: dict[int, int] | None = None) -> None:
    """Run `vibraclip identify` with parsed `args` and the (IR, Raman) `queries` already read by
    `identify_flags.read_queries` (None: read them here; `printed`: the notes it printed, so
    that a note added later is printed too); `cli.main` ends a failure in one line."""
    # before the model and the library: a bad flag or an unreadable file costs nothing
    check_identify_flags(args, RESULT_SUFFIXES)
    printed = {} if printed is None else printed
    ir, raman = read_queries(args, printed) if queries is None else queries
    model, stats, model_name = model_from(args.checkpoint)
    identify.check_query(model, ir, raman, args.mass, args.formula, args.top)  # before the library
    # 'qm9': the first query computes the QM9 conformers missing from the shared cache and
    # embeds all of QM9 (progress bars); later ones read the cached library
    candidate_set = candidates.load_candidates(args.candidates)
    library = library_cache.build_library(model, candidate_set, stats, args.cache_dir,
                                          workers=args.workers, batch_size=args.batch_size)
    reranker = shipped_reranker(args.rerank)
    df = identify.identify(model, library, ir, raman, mass_da=args.mass,
                           mass_tol_da=args.mass_tol, formula=args.formula, top=args.top,
                           reranker=reranker, cache_dir=args.cache_dir, workers=args.workers)
    skipped = ", ".join(f"{k}={v}" for k, v in sorted(library.skipped.items())) or "none"
    print(f"model: {model_name}")
    print(f"library: {len(library)} candidates from {args.candidates} "
          f"(skipped {sum(library.skipped.values())}: {skipped})")
    if library.skipped.get("stereoisomer"):
        print(f"note: {library.skipped['stereoisomer']} stereoisomer(s) merged with the first "
              "listed form: the model drops stereochemistry (E/Z, R/S), so they rank as one")
    if df.attrs["filters"]:
        print(f"filter: {' and '.join(df.attrs['filters'])} kept "
              f"{df.attrs['n_candidates']} of {len(library)} candidates")
    reranked = "confidence" in df.attrs
    if reranked:
        print(fusion_text(df, reranker.weight, reranker.depth))
    print_notes((ir, raman), printed)  # any note the ranking added
    print(format_table(df))
    if reranked:
        print(confidence_text(df))
    if args.out:
        with _named("--out", args.out):
            print(f"wrote {write_results(df, args.out)}")
    if args.png:
        queries = {k: (spectrum_to_model_input(sp), coverage_mask(sp))
                   for k, sp in (("ir", ir), ("raman", raman)) if sp is not None}
        with _named("--png", args.png):
            drawn = (draw_overlay(df, queries, reranker.settings, args.png) if reranked
                     else draw_grid(df, args.png))
        print(f"wrote {drawn}")
    print_notes((ir, raman), printed)


@contextlib.contextmanager
def _named(flag: str, value: str) -> Iterator[None]:
    """A failure to write `value` as FlagError naming `flag` (the folder may have changed since
    the check before the model loaded)."""
    try:
        yield
    except OSError as exc:
        raise FlagError(f"{flag} {value}: cannot be written ({exc.strerror or exc}); give a "
                        "writable path") from None
