import json

import pytest

from vibraclip_core.config.profiles import (ANALYSIS_FIELDS, PAPER_COMPARED_FIELDS, PROFILES,
                                            REPO_ROOT, Config, departures_from_paper,
                                            get_config)


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
    from vibraclip_core.config.profiles import get_config

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
    # the released objective, and no learnable scale under weight decay
    assert paper.pair_loss == "reference" and paper.decay_logit_scale is False
    assert paper.library_size == 12_741 and 12_741 in paper.library_curve_sizes
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



def test_fast_train_is_auto_by_default_and_each_path_is_a_separate_run():
    for profile in PROFILES:
        assert get_config(profile).fast_train == "auto"
    digests = {v: get_config("cpu", fast_train=v).digest()
               for v in ("auto", "on", "float32", "off")}
    assert len(set(digests.values())) == 4
    with pytest.raises(ValueError, match="fast_train='fast'"):
        get_config("cpu", fast_train="fast")


# digests of the old code (fast_train a bool), from before "auto": runs trained then
OLD_DIGESTS = {("tiny", True): "1da60137c7cf", ("tiny", False): "4fc83677f53d",
               ("cpu", True): "b0f819a22aea", ("cpu", False): "c398382fd29c",
               ("paper", True): "a5d5769190b4", ("paper", False): "a77d55cd281a"}


@pytest.mark.parametrize("profile, old", sorted(OLD_DIGESTS))
def test_on_and_off_digest_as_true_and_false_did(profile, old):
    """A run resolved to bf16 ("on") or to the exact path ("off") keeps its cached run folder."""
    value = "on" if old else "off"
    assert get_config(profile, fast_train=value).digest() == OLD_DIGESTS[(profile, old)]
    assert get_config(profile, fast_train=old).fast_train == value  # legacy bools read as on/off


def test_the_shipped_runs_config_json_reads_as_the_bf16_run_it_was():
    """models/config.json (fast_train true when it was trained: bf16) is the transfer run of the
    cpu profile whose folder the manifest names: read by this code it digests as that folder,
    and the cpu profile's recipe resolved to the same path gives the same key."""
    raw = json.loads((REPO_ROOT / "models" / "config.json").read_text())
    shipped = Config.from_dict(raw)
    assert shipped.fast_train in ("on", "float32", "off")  # a resolved path, never auto
    run = json.loads((REPO_ROOT / "models" / "manifest.json").read_text())["run"]
    assert run.split("-")[1] == shipped.digest()
    cpu = get_config("cpu", fast_train=shipped.fast_train)
    assert cpu.replace(**cpu.transfer_recipe()).digest() == shipped.digest()


def test_choices_are_checked_when_a_config_is_built():
    """A bad choice fails at once, naming the field and the allowed values."""
    with pytest.raises(ValueError, match=r"loss='graph_raman': choose one of \['graph_ir', "
                                         r"'graph_centred', 'all_pairs'\]"):
        get_config("cpu", loss="graph_raman")
    with pytest.raises(ValueError, match="pair_loss='siglip'.*'clip', 'reference'"):
        get_config("cpu").replace(pair_loss="siglip")
    with pytest.raises(ValueError, match="trainable='fc'.*'last_layer'"):
        Config(trainable="fc")
    with pytest.raises(ValueError, match=r"augment=\('scale', 'blur'\): \['blur'\] not among"):
        Config(augment=["scale", "blur"])
    with pytest.raises(ValueError, match="augment='scale': give a sequence"):
        Config(augment="scale")  # a string is not a list of one transform
    with pytest.raises(ValueError, match="split_fractions=.*give 3 values"):
        Config(split_fractions=(0.5, 0.5))
    with pytest.raises(ValueError, match="profile='gpu'"):
        Config(profile="gpu")


def test_loss_choices_come_from_the_loss_mode_registry():
    from vibraclip_core.config.profiles import field_spec
    from vibraclip_core.config.loss_modes import LOSS_MODES, PAIR_LOSSES
    from vibraclip_core.model.losses import MODE_TERMS, REFERENCE_WEIGHTS

    assert field_spec("loss").choices == tuple(LOSS_MODES) == tuple(MODE_TERMS)
    assert field_spec("pair_loss").choices == PAIR_LOSSES
    for name, mode in LOSS_MODES.items():
        assert abs(sum(mode.reference_weights.values()) - 1.0) < 1e-12
        assert set(mode.reference_weights) == set(mode.terms) == set(REFERENCE_WEIGHTS[name])
    assert [n for n, m in LOSS_MODES.items() if not m.uses_raman] == ["graph_ir"]


def test_every_profile_sets_every_profile_dependent_field():
    from typing import get_args

    from vibraclip_core.config.profiles import PROFILE_FIELDS, ProfileName

    assert set(PROFILES) == set(get_args(ProfileName))
    for name, values in PROFILES.items():
        assert set(values) == set(PROFILE_FIELDS), name
        assert get_config(name).to_dict() == {**Config(profile=name).to_dict(), **{
            k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}}


def test_class_defaults_claim_no_profile():
    assert Config().profile is None
    assert get_config().profile == "cpu"
    # the class defaults hold the paper's model sizes, not the cpu profile's
    assert Config().latent_dim == get_config("paper").latent_dim != get_config("cpu").latent_dim


def test_older_config_json_still_builds(tmp_path):
    """A config.json written before a field was removed (REMOVED_FIELDS) or added still loads:
    the shipped model's config.json carries the removed `extra`."""
    from vibraclip_core.config.profiles import REMOVED_FIELDS, REPO_ROOT

    raw = json.loads((REPO_ROOT / "models" / "config.json").read_text())
    cfg = Config.from_dict({**raw, "extra": {}})
    assert "extra" in REMOVED_FIELDS and "extra" not in cfg.to_dict()
    assert cfg.latent_dim == raw["latent_dim"] and cfg.augment == tuple(raw["augment"])
    old = {k: v for k, v in raw.items() if k not in ("folds", "realign_lr")}  # fields added later
    assert Config.from_dict(old) == Config.from_dict(raw)
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['laten_dim'\]"):
        Config.from_dict({**raw, "laten_dim": 3})


def test_chapter_knobs_are_analysis_fields_outside_the_run_digest():
    cfg = get_config("cpu")
    for name, value in (("folds", 3), ("realign_epochs", 5), ("realign_lr", 1e-3),
                        ("mass_tol_da", 1.0), ("measured_library_size", 500),
                        ("wrong_mass_offsets_da", (2.0,)), ("ood_split_fractions", (0.6, 0.2, 0.2)),
                        ("transfer_augment", ("scale",)), ("laser_nm", 785.0),
                        ("temperature_k", 310.0), ("ablation_epochs", 3)):
        assert name in ANALYSIS_FIELDS
        assert cfg.replace(**{name: value}).digest() == cfg.digest()


def test_realignment_follows_the_config_and_the_paper_protocol_by_default():
    from vibraclip_core.experiments import realign

    paper = realign.realign_config(get_config("paper"), "x.ckpt")
    # the released fine-tuning: 15 epochs, lr 1e-5 on the last layer of each head, wd 0.01
    assert (paper.max_epochs, paper.lr_heads, paper.weight_decay) == (15, 1e-5, 0.01)
    assert paper.trainable == "last_layer" and paper.init_checkpoint == "x.ckpt"
    mine = realign.realign_config(get_config("cpu", realign_epochs=3, realign_lr=2e-4), "x.ckpt")
    assert (mine.max_epochs, mine.lr_graph, mine.lr_spectra, mine.lr_heads) == (3, 2e-4, 2e-4,
                                                                                2e-4)
    assert realign.realign_config(get_config("cpu"), "x.ckpt", epochs=4, lr=1e-3).max_epochs == 4


# Chapter parameters that are not run settings: what to draw, where optional data lies
CHAPTER_ONLY = {"overlay_molecule", "ood_dir", "experimental_dir", "paired_dir", "top_k",
                "n_hits", "n_misses", "n_measured"}


def test_chapter_parameters_are_config_fields():
    import ast

    from vibraclip_core.config.profiles import FIELD_DOCS, REPO_ROOT

    for path in sorted((REPO_ROOT / "book").glob("*.py")):
        cells = path.read_text().split("# %%")
        params = [c for c in cells if c.lstrip().startswith('tags=["parameters"]')]
        names = {t.id for c in params for node in ast.parse(c.split("\n", 1)[1]).body
                 for t in getattr(node, "targets", [])}
        assert names - CHAPTER_ONLY <= set(FIELD_DOCS), (path.name, names - set(FIELD_DOCS))


# Chapter knobs that the chapters still take as their own parameters instead of reading them
# from the config (issue 17): remove a name once its chapter reads `config.<name>`
NOT_YET_READ_FROM_CONFIG: set[str] = set()


def config_reads(source: str, inside_config: bool = False) -> set[str]:
    """Names read as attributes of a config in `source`: `config.x`, `cfg.x`, `c.x`,
    `<obj>.config.x` (and `self.x` in the Config class's own module) -- not any `.x`."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        v = node.value
        if (isinstance(v, ast.Name) and (v.id in {"c", "config", "cfg"} or "config" in v.id
                                         or (inside_config and v.id == "self"))) \
                or (isinstance(v, ast.Attribute) and v.attr == "config"):
            out.add(node.attr)
    return out


def test_config_reads_counts_config_attributes_only():
    assert config_reads("a = config.mass + run.config.seed + cfg.loss + c.fwhm_cm1") == {
        "mass", "seed", "loss", "fwhm_cm1"}
    assert config_reads("a = data.mass + self.mass + model.use_mass") == set()
    assert config_reads("a = self.mass", inside_config=True) == {"mass"}


def test_every_field_is_read_from_a_config():
    """No unused field: each is read from a config somewhere in the package or the book."""
    from vibraclip_core.config import profiles
    from vibraclip_core.config.profiles import FIELD_DOCS, REPO_ROOT

    files = [*(REPO_ROOT / "vibraclip_core").rglob("*.py"), *(REPO_ROOT / "book").glob("*.py")]
    read = set().union(*(config_reads(p.read_text(), inside_config=p.samefile(profiles.__file__))
                         for p in files))
    assert set(FIELD_DOCS) - read <= NOT_YET_READ_FROM_CONFIG


def test_transfer_recipe_maps_the_transfer_fields_onto_training_fields():
    cfg = get_config("cpu").replace(transfer_augment=("scale",), transfer_augment_strength=0.5,
                                    transfer_second_theory_fraction=0.0,
                                    transfer_second_theory_molecules=300)
    # a zero fraction leaves the second theory out: the run is the one without it
    alone = cfg.replace(**cfg.transfer_recipe())
    assert alone.second_theory is None and alone.second_theory_molecules is None
    assert alone.digest() == cfg.replace(augment=("scale",), augment_strength=0.5).digest()
    mixed = cfg.replace(transfer_second_theory_fraction=0.5)
    run = mixed.replace(**mixed.transfer_recipe())
    assert (run.second_theory, run.second_theory_fraction, run.second_theory_molecules) == (
        "data/qm9_gfn1_train", 0.5, 300)
    assert run.digest() != alone.digest()
    for name in ("transfer_second_theory", "transfer_second_theory_fraction",
                 "transfer_second_theory_molecules"):  # chapter knobs: no run of their own
        assert name in ANALYSIS_FIELDS
    assert mixed.digest() == cfg.digest()


def test_a_relative_second_theory_folder_is_read_from_the_repository(tmp_path):
    cfg = get_config("cpu")
    assert cfg.second_theory_path is None
    assert cfg.replace(second_theory="data/qm9_gfn1_train").second_theory_path == (
        REPO_ROOT / "data" / "qm9_gfn1_train")
    assert cfg.replace(second_theory=str(tmp_path)).second_theory_path == tmp_path
