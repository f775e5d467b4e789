"""Pseudo-measured spectra: rotational constants, band contours against their formulas, the
instrument's draws, and the vectorised contour against a loop twin."""

import numpy as np
import pytest

from vibraclip_core.data import pseudo_measured as P
from vibraclip_core.data.spectra import model_grid

CO2 = (np.array([6, 8, 8]), np.array([[0, 0, 0], [0, 0, 1.16], [0, 0, -1.16]]))
# gas-phase water (r 0.9572 A, angle 104.52 deg), principal constants 27.88 / 14.51 / 9.28 cm-1
WATER = (np.array([8, 1, 1]), np.array([[0, 0, 0.1173], [0, 0.7572, -0.4692],
                                        [0, -0.7572, -0.4692]]))


def test_rotational_constants_of_co2_and_water():
    a, b, c = P.rotational_constants_cm1(*CO2)
    # B = h / (8 pi^2 c I), I = 2 m_O r^2
    assert np.isinf(a)
    assert b == pytest.approx(16.857629 / (2 * 15.9949 * 1.16 ** 2), rel=1e-3)
    assert b == pytest.approx(c)
    assert P.rotational_constants_cm1(*WATER) == pytest.approx((27.88, 14.51, 9.28), rel=0.03)


def test_rotational_constants_ignore_position_and_orientation():
    z, x = WATER
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    moved = x @ rot.T + np.array([3.0, -1.0, 7.0])
    assert P.rotational_constants_cm1(z, moved) == pytest.approx(P.rotational_constants_cm1(z, x))


def _branch_maxima(y: np.ndarray, grid: np.ndarray, centre: float) -> tuple[float, float]:
    left, right = grid < centre, grid > centre
    return grid[left][np.argmax(y[left])], grid[right][np.argmax(y[right])]


@pytest.mark.parametrize("temperature", [150.0, 298.15, 600.0])
def test_p_r_separation_of_co2_follows_the_formula(temperature):
    b = P.rotational_constants_cm1(*CO2)[1]
    grid = P.render_grid()
    y = P.contour_spectrum(np.array([2349.1]), np.array([1.0]), np.array(["b"]),
                           P.rotational_constants_cm1(*CO2), temperature, grid)
    lo, hi = _branch_maxima(y, grid, 2349.1)
    expected = 2.358 * np.sqrt(b * temperature)  # the textbook 2.358 sqrt(B T)
    assert hi - lo == pytest.approx(expected, abs=1.0)
    assert P.pr_separation_cm1(b, temperature) == pytest.approx(expected, rel=1e-3)


def test_band_types_set_the_q_branch_and_the_width():
    rot = P.rotational_constants_cm1(*WATER)
    grid = P.render_grid()
    shapes = {t: P.contour_spectrum(np.array([2000.0]), np.array([1.0]), np.array([t]), rot,
                                    298.15, grid) for t in P.BAND_TYPES}
    centre = np.argmin(np.abs(grid - 2000.0))
    assert shapes["b"][centre] < 0.05 * shapes["b"].max()  # no Q branch: a dip at the centre
    assert shapes["c"][centre] > 0.9 * shapes["c"].max()  # a strong Q branch
    # a b-type band rotates about a and c: (A + C) / 2 is the widest effective constant
    seps = {t: np.diff(_branch_maxima(np.where(np.abs(grid - 2000) < 5, 0, s), grid, 2000.0))[0]
            for t, s in shapes.items()}
    assert seps["b"] > seps["a"]
    for y in shapes.values():  # intensity is the band's area
        assert y.sum() * P.FINE_STEP_CM1 == pytest.approx(1.0, rel=1e-3)


def test_contour_spectrum_matches_a_loop_over_sticks():
    rot = np.array([0.9, 0.2, 0.15])
    freqs = np.array([812.3, 1450.0, 1452.5, 2950.2, -30.0])
    ints = np.array([3.0, 1.0, 2.0, 0.5, 9.0])
    types = np.array(["a", "b", "c", "a", "a"])
    grid = P.render_grid()
    fast = P.contour_spectrum(freqs, ints, types, rot, 298.15, grid)
    naive = np.zeros(grid.size)
    for f, i, t in zip(freqs, ints, types):
        if f <= 0:
            continue
        b = P.effective_constant_cm1(rot, t)
        # the fast path deposits a stick on its two grid neighbours; sum the two kernels
        j = int(np.floor((f - grid[0]) / P.FINE_STEP_CM1))
        w = (f - grid[j]) / P.FINE_STEP_CM1
        for k, share in ((j, 1 - w), (j + 1, w)):
            naive += i * share * P.band_contour(grid - grid[k], b, 298.15, P.Q_FRACTION[t])
    assert np.allclose(fast, naive, atol=1e-6 * naive.max())


def test_render_is_seeded_and_records_its_draws():
    rot = P.rotational_constants_cm1(*WATER)
    freqs, ints = np.array([1000.0, 1700.0, 2900.0]), np.array([50.0, 200.0, 30.0])
    one = P.render(freqs, ints, rot, np.random.default_rng(3))
    two = P.render(freqs, ints, rot, np.random.default_rng(3))
    other = P.render(freqs, ints, rot, np.random.default_rng(4))
    assert np.array_equal(one.intensity, two.intensity)
    assert not np.array_equal(one.intensity[:100], other.intensity[:100])
    assert one.y_kind == "absorbance"
    assert any(n.startswith("resolution") for n in one.notes)
    assert one.wavenumbers_cm1[0] in P.PseudoMeasuredSettings().low_edge_cm1


def test_clean_settings_reproduce_the_bands():
    """Without baseline, noise or atmosphere, the strongest band of the rendering sits where the
    strongest stick is (within the P-R half separation)."""
    clean = P.PseudoMeasuredSettings(baseline_slope_max=0, baseline_curvature_max=0,
                                     noise_fraction=(0.0,), atmosphere_probability=0)
    rot = np.array([0.5, 0.1, 0.09])
    sp = P.render(np.array([1000.0, 1700.0]), np.array([1.0, 10.0]), rot,
                  np.random.default_rng(0), clean)
    peak = sp.wavenumbers_cm1[np.argmax(sp.intensity)]
    assert abs(peak - 1700.0) < P.pr_separation_cm1(0.5, 298.15)
    assert sp.intensity.min() > -1e-9


def test_inputs_keep_a_molecules_query_whatever_the_set():
    rot = np.array([[0.5, 0.1, 0.09], [0.3, 0.2, 0.1]])
    offsets = np.array([0, 2, 4])
    freqs = np.array([900.0, 1700.0, 1200.0, 3000.0], dtype=np.float32)
    ints = np.array([1.0, 3.0, 2.0, 1.0], dtype=np.float32)
    both, masks = P.pseudo_measured_inputs(offsets, freqs, ints, rot, seed=5, keys=[11, 22])
    alone, _ = P.pseudo_measured_inputs(offsets[:2], freqs[:2], ints[:2], rot[:1], seed=5,
                                        keys=[11])
    assert np.array_equal(both[0], alone[0])
    assert both.shape == masks.shape == (2, model_grid().size)
    assert both.min() >= 0 and both.max() == pytest.approx(1.0)
    low = model_grid()[masks[0]][0]
    assert low >= min(P.PseudoMeasuredSettings().low_edge_cm1)


def test_datasheet_names_every_parameter_and_the_committed_one_is_current():
    settings = P.PseudoMeasuredSettings()
    rot = np.array([[0.5, 0.1, 0.09], [np.inf, 0.39, 0.39]])
    text = P.datasheet_markdown(settings, rot, "two test molecules")
    for name, value in settings.to_dict().items():
        assert f"| `{name}` | {value} | {P.PARAMETER_SOURCES[name]} |" in text
    assert "two test molecules; 2 molecules" in text
    committed = P.DATASHEET.read_text()
    head = text.split("## The molecules")[0]
    assert committed.startswith(head), "data/pseudo_measured.md is stale: run calibrate-rerank"
