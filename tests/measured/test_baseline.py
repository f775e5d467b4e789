import numpy as np
import pytest

from vibraclip_core.data.spectra import Spectrum, SpectrumError, spectrum_to_model_input
from vibraclip_core.measured.baseline import correct_baseline


def _bands(x):
    return np.exp(-0.5 * ((x - 1700) / 12) ** 2) + 0.6 * np.exp(-0.5 * ((x - 2950) / 18) ** 2) \
        + 0.4 * np.exp(-0.5 * ((x - 1200) / 10) ** 2)


@pytest.mark.parametrize("step", [1.0, 2.0, 4.0])
def test_arpls_removes_a_curved_baseline_and_keeps_the_bands(step):
    x = np.arange(600.0, 3900.0, step)
    clean = _bands(x)
    drift = 0.5 + 0.3 * (x - 600) / 3300 + 0.2 * ((x - 2250) / 1650) ** 2
    s = Spectrum(x, clean + drift, "absorbance", "sloped.csv", [])
    fixed = correct_baseline(s, "arpls")
    # the model input of the corrected spectrum is close to that of the clean one
    ref = spectrum_to_model_input(Spectrum(x, clean, "absorbance", "clean.csv", []))
    raw = spectrum_to_model_input(s)
    out = spectrum_to_model_input(fixed)
    assert np.abs(out - ref).max() < 0.03 < 0.1 < np.abs(raw - ref).max()
    assert any(n.startswith("baseline subtracted (arPLS") for n in fixed.notes)
    assert correct_baseline(s, "none") is s


def test_unknown_method_names_the_file_and_the_choices():
    s = Spectrum(np.arange(600.0, 900.0), np.ones(300), "absorbance", "q.csv", [])
    with pytest.raises(SpectrumError, match="q.csv: unknown baseline method 'rubber'; choose "
                                            "from none, arpls"):
        correct_baseline(s, "rubber")
