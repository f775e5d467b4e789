"""The lines identify prints under its table: which candidates were fused, and the verdict."""

import pandas as pd

from vibraclip_core.app import report
from vibraclip_core.retrieval.rerank import ALL_CANDIDATES


def table(**attrs) -> pd.DataFrame:
    df = pd.DataFrame({"rank": [1, 2]})
    df.attrs.update({"confidence": 0.83, "none_fits": False, "confidence_calibrated": True,
                     "n_reranked": 1090, "n_simulated": 3, "not_simulated": 0,
                     "simulation_failures": {}, **attrs})
    return df


def test_confidence_says_none_fits_and_only_where_calibrated():
    assert report.confidence_text(table()).startswith(
        "confidence that rank 1 is right: 0.83 (a confident answer")
    flagged = report.confidence_text(table(none_fits=True))
    assert flagged.startswith("no candidate fits") and "0.83" in flagged
    assert "10%" in flagged  # the false-flag rate it was set at
    ir_raman = report.confidence_text(table(confidence_calibrated=False, none_fits=True))
    assert ir_raman.startswith("confidence: not calibrated") and "0.83" not in ir_raman
    # an older re-ranking file cannot say that nothing fits: the probability alone
    assert report.confidence_text(table(none_fits=None, confidence=0.3)).startswith(
        "confidence that rank 1 is right: 0.30 (a guess")


def test_fusion_line_counts_where_the_spectra_came_from():
    line = report.fusion_text(table(not_simulated=1000, simulation_failures={"embed": 2}),
                              16.0, ALL_CANDIDATES)
    assert line.startswith("fused: all 1,090 admissible candidates")
    assert "85 on disk" in line and "3 simulated now" in line
    assert "1,000 without one" in line and "failed: {'embed': 2}" in line
    assert report.fusion_text(table(), 4.0, 100).startswith("re-ranked: the model's top 1,090")
