import json

import pytest

from vibraclip_core.config import (ANALYSIS_FIELDS, PAPER_COMPARED_FIELDS, PROFILES, Config,
                                   departures_from_paper, get_config)


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


def test_reference_loss_comparison_runs_under_every_profile():
    # the cpu book now trains Chapter 2's comparison too (it used to skip it)
    for profile in ("cpu", "tiny", "paper"):
        assert get_config(profile).compare_reference_loss is True


def test_paper_profile_is_the_released_configuration():
    # configs/config.yaml, main_ir_raman.py (seed, early stopping) and configure_optimizers
    # (min_lr) of the released code
    paper = get_config("paper")
    assert (paper.lr_graph, paper.lr_spectra, paper.lr_heads) == (4e-4, 4e-4, 4e-4)
    assert paper.weight_decay == 0.1 and paper.head_dropout == 0.0 and paper.seed == 42
    assert (paper.plateau_factor, paper.plateau_patience, paper.min_lr) == (0.1, 5, 1e-6)
    assert (paper.batch_size, paper.max_epochs, paper.patience) == (128, 200, 15)
    assert paper.missing_fractions == (0.0, 0.05, 0.10, 0.15, 0.20, 0.50)
    assert departures_from_paper(paper) == {}


@pytest.mark.parametrize("profile", ["cpu", "tiny"])
def test_book_profiles_keep_their_optimisation(profile):
    cfg = get_config(profile)
    assert (cfg.lr_graph, cfg.lr_spectra, cfg.lr_heads, cfg.weight_decay) == (
        1e-4, 1e-4, 1e-3, 1e-4)
    assert cfg.head_dropout == 0.1 and cfg.seed == 0
    # the scheduler the book was computed with: factor 0.5, patience max(1, patience // 3)
    assert cfg.plateau_factor == 0.5 and cfg.min_lr == 0.0
    assert cfg.plateau_patience == max(1, cfg.patience // 3) == 1
    assert cfg.missing_fractions == (0.0, 0.5)
    # None-valued overrides keep the profile's value, others replace it
    assert get_config(profile, seed=None, plateau_factor=None) == cfg
    assert get_config(profile, plateau_patience=4).plateau_patience == 4


def test_departures_from_paper_name_each_field_with_both_values():
    cpu = get_config("cpu")
    gone = departures_from_paper(cpu)
    assert gone["lr_heads"] == (1e-3, 4e-4) and gone["seed"] == (0, 42)
    assert gone["plateau_patience"] == (1, 5) and gone["max_epochs"] == (12, 200)
    assert "batch_size" not in gone  # 128 in both
    assert set(gone) <= set(PAPER_COMPARED_FIELDS)
    assert "latent_dim" not in gone  # a model size, not an optimisation choice
    near = get_config("paper", seed=0, min_lr=0.0)
    assert departures_from_paper(near) == {"seed": (0, 42), "min_lr": (0.0, 1e-6)}


def test_fraction_fields_take_lists_and_survive_json():
    cfg = get_config("cpu").replace(missing_fractions=[0, 0.25], split_fractions=[0.7, 0.2, 0.1])
    assert cfg.missing_fractions == (0.0, 0.25) and cfg.split_fractions == (0.7, 0.2, 0.1)
    assert cfg == get_config("cpu", missing_fractions=(0.0, 0.25),
                             split_fractions=(0.7, 0.2, 0.1))
    back = Config(**json.loads(json.dumps(cfg.to_dict())))  # config.json gives lists
    assert back == cfg and back.digest() == cfg.digest()
    assert cfg.digest() != cfg.replace(split_fractions=[0.8, 0.1, 0.1]).digest()
    with pytest.raises(ValueError, match="missing_fractions=0.5: give a sequence"):
        cfg.replace(missing_fractions=0.5)


def test_analysis_fields_never_change_the_run_digest():
    """Choosing what a chapter evaluates must not retrain its models."""
    cfg = get_config("cpu")
    for name, value in (("missing_fractions", (0.0, 0.1)), ("compare_reference_loss", False),
                        ("library_size", 3000), ("library_curve_sizes", (2000, 5000))):
        assert name in ANALYSIS_FIELDS
        assert cfg.replace(**{name: value}).digest() == cfg.digest()
    assert cfg.replace(missing_raman=0.5).digest() != cfg.digest()
    assert cfg.replace(library_size=3000).digest("library_size") != cfg.digest("library_size")



def test_fast_train_is_the_default_and_its_switch_is_a_separate_run():
    for profile in PROFILES:
        assert get_config(profile).fast_train is True
    exact = get_config("cpu", fast_train=False)
    assert exact.fast_train is False and exact.digest() != get_config("cpu").digest()
