"""GFN-xTB harmonic IR and Raman stick spectra for one molecule (tblite): GFN2-xTB by default,
GFN1-xTB as the second level of theory (`SimulatorSettings.method`).

Route: relax the input geometry (L-BFGS on analytic gradients), build the Hessian by central
differences of analytic gradients, project out translations and rotations in mass-weighted
coordinates, and obtain dipole and polarizability derivatives as first and second finite-field
derivatives of the nuclear gradient (12 field calculations instead of 6N polarizability runs).

Conventions: tblite's energy in a uniform field F is E = E0 - mu.F, so
dmu_i/dR = -dg/dF_i and dalpha_ij/dR = -d2g/(dF_i dF_j), with g = dE/dR.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace

import numpy as np

from vibraclip_core.data.formulas import atomic_masses

log = logging.getLogger(__name__)

BOHR_PER_ANGSTROM = 1.0 / 0.529177210903
ANGSTROM_PER_BOHR = 0.529177210903
# sqrt(Eh / (bohr^2 amu)) expressed as a wavenumber in cm-1
AU_TO_CM1 = 5140.4871
# (e / sqrt(amu))^2 -> km/mol
IR_AU_TO_KM_MOL = 974.8801
# (bohr^2 / sqrt(amu))^2 -> Angstrom^4 / amu
RAMAN_AU_TO_A4_AMU = ANGSTROM_PER_BOHR**4

STATUS_OK = "ok"
# gradients in a uniform field per molecule (field_derivatives): +-F along each axis and
# +-(F_i + F_j) along each pair of axes
FIELD_GRADIENTS = 2 * 3 + 2 * 3
METHODS = ("GFN2-xTB", "GFN1-xTB")  # tblite's parametrisations; the first is the embedded set's


class SimulationError(RuntimeError):
    """A molecule the simulator could not handle; `status` is a short machine-readable reason."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SimulatorSettings:
    """Numerical settings; defaults were validated against direct finite differences."""

    scf_accuracy: float = 0.01
    hessian_step_bohr: float = 0.005
    field_au: float = 0.005
    relax_gmax: float = 1.5e-4  # Eh/bohr, max gradient component at convergence
    relax_max_steps: int = 600
    imaginary_threshold_cm1: float = 30.0
    max_elements: int = 86  # tblite's GFN2 parameterisation ends at Rn
    method: str = METHODS[0]

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"simulator method {self.method!r}: choose one of {METHODS}")


@dataclass
class VibrationalResult:
    """Harmonic modes of one relaxed molecule; arrays are (n_modes,) float64."""

    freqs_cm1: np.ndarray
    ir_km_mol: np.ndarray
    raman_a4_amu: np.ndarray
    positions_ang: np.ndarray
    n_relax_steps: int
    timings_s: dict[str, float] = field(default_factory=dict)


def _calculator(numbers: np.ndarray, pos_bohr: np.ndarray, settings: SimulatorSettings,
                efield: tuple[float, float, float] | None = None):
    from tblite.interface import Calculator
    from tblite import library

    calc = Calculator(settings.method, numbers, pos_bohr)
    calc.set("verbosity", 0)
    calc.set("accuracy", settings.scf_accuracy)
    if efield is not None:
        # tblite's Python wrapper rejects numpy arrays here; a cffi buffer works and must
        # outlive the calculator, so it is attached to it.
        buf = library.ffi.new("double[3]", list(efield))
        calc.add("electric-field", buf)
        calc._field_buffer = buf
    return calc


def _gradient(calc, pos_bohr: np.ndarray, restart=None):
    calc.update(pos_bohr)
    try:
        res = calc.singlepoint(restart, copy=True)
    except Exception as exc:  # tblite raises its own runtime error class
        raise SimulationError("scf_failure", f"SCF did not converge: {exc}") from exc
    return res.get("energy"), np.asarray(res.get("gradient")), res


def relax(numbers: np.ndarray, pos_bohr: np.ndarray, settings: SimulatorSettings):
    """L-BFGS relaxation; returns (positions_bohr, reference_result, n_steps)."""
    from scipy.optimize import minimize

    calc = _calculator(numbers, pos_bohr, settings)
    state = {"res": None, "n": 0}

    def fun(x: np.ndarray):
        e, g, res = _gradient(calc, x.reshape(-1, 3), state["res"])
        state["res"] = res
        state["n"] += 1
        return e, g.ravel()

    out = minimize(fun, pos_bohr.ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": settings.relax_max_steps, "gtol": settings.relax_gmax,
                            "ftol": 1e-15, "maxcor": 30})
    x = out.x.reshape(-1, 3)
    _, g, res = _gradient(calc, x, state["res"])
    gmax = float(np.abs(g).max())
    if gmax > 2 * settings.relax_gmax:
        raise SimulationError("relaxation_not_converged",
                              f"max gradient {gmax:.2e} Eh/bohr after {state['n']} steps")
    return x, res, state["n"], calc


def numerical_hessian(calc, pos_bohr: np.ndarray, ref, step: float) -> np.ndarray:
    """(3N, 3N) Hessian in Eh/bohr^2 by central differences of analytic gradients."""
    n3 = pos_bohr.size
    hess = np.empty((n3, n3))
    flat = pos_bohr.ravel()
    for i in range(n3):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        gp = _gradient(calc, plus.reshape(-1, 3), ref)[1].ravel()
        gm = _gradient(calc, minus.reshape(-1, 3), ref)[1].ravel()
        hess[i] = (gp - gm) / (2 * step)
    return 0.5 * (hess + hess.T)


def field_derivatives(numbers: np.ndarray, pos_bohr: np.ndarray, g0: np.ndarray,
                      settings: SimulatorSettings) -> tuple[np.ndarray, np.ndarray]:
    """Dipole (3, 3N) and polarizability (3, 3, 3N) derivatives from 12 finite-field gradients."""
    f = settings.field_au
    g0 = g0.ravel()

    def grad_in_field(vec) -> np.ndarray:
        calc = _calculator(numbers, pos_bohr, settings, efield=tuple(vec))
        return _gradient(calc, pos_bohr)[1].ravel()

    eye = np.eye(3) * f
    gp = [grad_in_field(eye[i]) for i in range(3)]
    gm = [grad_in_field(-eye[i]) for i in range(3)]
    dmu = np.stack([-(gp[i] - gm[i]) / (2 * f) for i in range(3)])
    dalpha = np.empty((3, 3, g0.size))
    for i in range(3):
        dalpha[i, i] = -(gp[i] - 2 * g0 + gm[i]) / f**2
    for i, j in ((0, 1), (0, 2), (1, 2)):
        gpp = grad_in_field(eye[i] + eye[j])
        gmm = grad_in_field(-eye[i] - eye[j])
        mixed = (gpp + gmm - gp[i] - gm[i] - gp[j] - gm[j] + 2 * g0) / (2 * f**2)
        dalpha[i, j] = dalpha[j, i] = -mixed
    return dmu, dalpha


def internal_basis(masses: np.ndarray, pos_bohr: np.ndarray) -> np.ndarray:
    """(3N, 3N - 6) or (3N, 3N - 5) orthonormal basis orthogonal to mass-weighted rigid motions."""
    n = len(masses)
    sq = np.sqrt(masses)
    com = (masses[:, None] * pos_bohr).sum(0) / masses.sum()
    r = pos_bohr - com
    vecs = []
    for k in range(3):
        t = np.zeros((n, 3))
        t[:, k] = sq
        vecs.append(t.ravel())
        axis = np.zeros(3)
        axis[k] = 1.0
        vecs.append((np.cross(axis, r) * sq[:, None]).ravel())
    u, s, _ = np.linalg.svd(np.stack(vecs, axis=1), full_matrices=True)
    n_rigid = int((s > 1e-6 * s.max()).sum())  # 5 for linear molecules, 6 otherwise
    return u[:, n_rigid:]


def normal_modes(hess: np.ndarray, masses: np.ndarray, pos_bohr: np.ndarray):
    """Frequencies (cm-1, imaginary as negative) and Cartesian displacements (3N, n_modes)."""
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)
    h_mw = hess * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
    basis = internal_basis(masses, pos_bohr)
    evals, evecs = np.linalg.eigh(basis.T @ h_mw @ basis)
    freqs = np.sign(evals) * np.sqrt(np.abs(evals)) * AU_TO_CM1
    cart = inv_sqrt_m[:, None] * (basis @ evecs)  # dR/dQ in bohr / (bohr sqrt(amu))
    return freqs, cart


def intensities(dmu: np.ndarray, dalpha: np.ndarray, cart: np.ndarray):
    """IR intensities (km/mol) and Raman activities (A^4/amu) for each mode column of `cart`."""
    dmu_q = dmu @ cart  # (3, n_modes)
    ir = IR_AU_TO_KM_MOL * (dmu_q**2).sum(0)
    da = np.einsum("ijk,km->ijm", dalpha, cart)
    iso = (da[0, 0] + da[1, 1] + da[2, 2]) / 3.0
    aniso2 = 0.5 * ((da[0, 0] - da[1, 1]) ** 2 + (da[1, 1] - da[2, 2]) ** 2
                    + (da[2, 2] - da[0, 0]) ** 2
                    + 6 * (da[0, 1] ** 2 + da[1, 2] ** 2 + da[0, 2] ** 2))
    raman = RAMAN_AU_TO_A4_AMU * (45 * iso**2 + 7 * aniso2)
    return ir, raman


def simulate_molecule(numbers: np.ndarray, positions_ang: np.ndarray,
                      settings: SimulatorSettings = SimulatorSettings()) -> VibrationalResult:
    """Relax, then harmonic IR and Raman sticks for one neutral closed-shell molecule.

    Raises SimulationError with a status (unsupported_element, scf_failure,
    relaxation_not_converged, imaginary_mode) for molecules that cannot be handled.
    """
    import time

    numbers = np.asarray(numbers, dtype=np.int32)
    if numbers.size < 2:
        raise SimulationError("too_few_atoms", "a single atom has no vibrations")
    bad = sorted({int(z) for z in numbers if z < 1 or z > settings.max_elements})
    if bad:
        raise SimulationError("unsupported_element",
                              f"atomic numbers {bad} not in {settings.method}")
    if int(numbers.sum()) % 2:
        raise SimulationError("open_shell", "odd electron count; only closed shells are handled")
    masses = atomic_masses(numbers)
    pos = np.asarray(positions_ang, dtype=float) * BOHR_PER_ANGSTROM
    timings: dict[str, float] = {}
    for attempt in range(2):
        t0 = time.perf_counter()
        # The retry also relaxes 5x tighter: methyl rotors leave L-BFGS on a flat saddle
        # that only a tighter gradient threshold escapes.
        relax_settings = settings if attempt == 0 else replace(
            settings, relax_gmax=settings.relax_gmax / 5)
        pos, ref, n_steps, calc = relax(numbers, pos, relax_settings)
        g0 = np.asarray(ref.get("gradient"))
        t1 = time.perf_counter()
        hess = numerical_hessian(calc, pos, ref, settings.hessian_step_bohr)
        freqs, cart = normal_modes(hess, masses, pos)
        t2 = time.perf_counter()
        timings["relax"] = timings.get("relax", 0.0) + t1 - t0
        timings["hessian"] = timings.get("hessian", 0.0) + t2 - t1
        if freqs[0] > -settings.imaginary_threshold_cm1:
            break
        if attempt == 1:
            raise SimulationError("imaginary_mode",
                                  f"imaginary mode {freqs[0]:.0f}i cm-1 persists after re-relaxing")
        # A saddle point: push along the imaginary mode and relax again.
        mode = cart[:, 0].reshape(-1, 3)
        pos = pos + 0.3 * mode / np.abs(mode).max()
    t3 = time.perf_counter()
    dmu, dalpha = field_derivatives(numbers, pos, g0, settings)
    ir, raman = intensities(dmu, dalpha, cart)
    timings["fields"] = time.perf_counter() - t3
    return VibrationalResult(freqs_cm1=freqs, ir_km_mol=ir, raman_a4_amu=raman,
                             positions_ang=pos * ANGSTROM_PER_BOHR, n_relax_steps=n_steps,
                             timings_s=timings)


def limit_threads() -> None:
    """One OpenMP thread per worker process: the batch job parallelises over molecules."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_STACKSIZE", "256M")
