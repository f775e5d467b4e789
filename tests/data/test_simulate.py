import numpy as np
import pytest

from vibraclip_core.data.formulas import atomic_masses
from vibraclip_core.data.simulate import SimulationError, internal_basis, simulate_molecule

CO2 = ([6, 8, 8], [[0, 0, 0], [0, 0, 1.16], [0, 0, -1.16]])
WATER = ([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
METHANE = ([6, 1, 1, 1, 1], [[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63],
                             [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]])


def run(mol):
    return simulate_molecule(np.array(mol[0]), np.array(mol[1], float))


def test_co2_mutual_exclusion():
    r = run(CO2)
    assert len(r.freqs_cm1) == 4  # linear: 3N - 5
    bend = r.freqs_cm1[:2]
    sym, asym = r.freqs_cm1[2], r.freqs_cm1[3]
    assert abs(bend[0] - bend[1]) < 1.0 and bend[0] < sym < asym
    # symmetric stretch: Raman active, IR inactive; asymmetric stretch: the reverse
    assert r.ir_km_mol[2] < 1e-3 * r.ir_km_mol[3]
    assert r.raman_a4_amu[3] < 1e-3 * r.raman_a4_amu[2]
    # the bend is IR active and Raman inactive (centrosymmetric molecule)
    assert r.ir_km_mol[0] > 1.0 and r.raman_a4_amu[0] < 1e-3 * r.raman_a4_amu[2]


def test_water_three_modes_in_order():
    r = run(WATER)
    f = r.freqs_cm1
    assert len(f) == 3
    assert 1400 < f[0] < 1700  # bend
    assert 3400 < f[1] < f[2] < 3900  # symmetric below antisymmetric stretch
    assert (r.ir_km_mol > 0).all() and (r.raman_a4_amu > 0).all()


def test_methane_ch_stretches_and_degeneracy():
    r = run(METHANE)
    f = r.freqs_cm1
    assert len(f) == 9
    stretches = f[f > 2500]
    assert len(stretches) == 4 and np.all(np.abs(stretches - 3000) < 200)
    # the totally symmetric stretch (single) is IR-inactive; the triply degenerate one is active
    assert r.ir_km_mol[5] < 1e-2 and r.ir_km_mol[6:].min() > 1.0
    assert np.ptp(f[6:]) < 1.0


def test_frequencies_invariant_under_rigid_rotation():
    numbers = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])  # ethanol-like start from methane-ish guess
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    pos = mol.GetConformer().GetPositions()
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]]) @ np.array([[1, 0, 0], [0, np.cos(1.1), -np.sin(1.1)],
                                            [0, np.sin(1.1), np.cos(1.1)]])
    a = simulate_molecule(numbers, pos)
    b = simulate_molecule(numbers, pos @ rot.T + np.array([1.0, -2.0, 0.5]))
    hi = a.freqs_cm1 > 500
    np.testing.assert_allclose(a.freqs_cm1[hi], b.freqs_cm1[hi], atol=2.0)
    np.testing.assert_allclose(a.ir_km_mol[hi], b.ir_km_mol[hi], rtol=0.05, atol=0.5)
    np.testing.assert_allclose(a.raman_a4_amu[hi], b.raman_a4_amu[hi], rtol=0.05, atol=0.5)


def test_internal_basis_dimension_linear_and_nonlinear():
    m = atomic_masses(np.array([6, 8, 8]))
    lin = internal_basis(m, np.array(CO2[1], float))
    assert lin.shape == (9, 4)
    bent = internal_basis(atomic_masses(np.array([8, 1, 1])), np.array(WATER[1], float))
    assert bent.shape == (9, 3)
    np.testing.assert_allclose(bent.T @ bent, np.eye(3), atol=1e-10)


@pytest.mark.parametrize("numbers,status", [([6], "too_few_atoms"), ([6, 1, 1, 1], "open_shell"),
                                            ([118, 1], "unsupported_element")])
def test_bad_molecules_raise_with_status(numbers, status):
    pos = np.arange(3 * len(numbers), dtype=float).reshape(-1, 3)
    with pytest.raises(SimulationError) as err:
        simulate_molecule(np.array(numbers), pos)
    assert err.value.status == status
