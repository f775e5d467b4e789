import json

import pytest

from vibraclip_core.config import PROFILES, Config, get_config


def test_profiles_and_overrides():
    paper = get_config("paper")
    assert (paper.hidden_channels, paper.out_channels, paper.latent_dim) == (128, 181, 861)
    assert paper.batch_size == 128 and paper.max_epochs == 200 and paper.patience == 15
    tiny = get_config("tiny", seed=5, n_molecules=None)
    assert tiny.seed == 5 and tiny.n_molecules == PROFILES["tiny"]["n_molecules"]
    assert get_config("cpu").profile == "cpu"


def test_unknown_names_are_reported():
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        get_config("gpu")
    with pytest.raises(ValueError, match="hiden_channels"):
        get_config("cpu", hiden_channels=3)


def test_digest_tracks_fields(tmp_path):
    a = Config()
    assert a.digest() == Config().digest()
    assert a.digest("fwhm_cm1") == a.replace(seed=9).digest("fwhm_cm1")
    assert a.digest("fwhm_cm1") != a.replace(fwhm_cm1=20.0).digest("fwhm_cm1")
    a.write_json(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["latent_dim"] == 861


def test_for_ablation_uses_the_profile_budget():
    from vibraclip_core.config import get_config

    cpu = get_config("cpu")
    assert cpu.for_ablation().max_epochs == cpu.ablation_epochs < cpu.max_epochs
    paper = get_config("paper")
    assert paper.ablation_epochs is None and paper.for_ablation().max_epochs == paper.max_epochs
    assert get_config("cpu", ablation_epochs=2).for_ablation().max_epochs == 2


def test_cpu_book_skips_the_reference_loss_comparison_but_tests_keep_it():
    from vibraclip_core.ablations import default_compare_reference_loss

    assert default_compare_reference_loss("cpu") is False
    assert default_compare_reference_loss("tiny") is True  # nbval still executes the comparison
    assert default_compare_reference_loss("paper") is True
    assert default_compare_reference_loss("my-gpu-profile") is True  # unknown: as the paper
