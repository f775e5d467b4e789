"""The types of config values: the named choices (Literals) and how an annotation is checked.

`Config.__post_init__` checks every field with its FieldSpec, and the CLI builds its flags
from the same specs, so a choice list is written once: here, or for the loss modes in
`loss_modes.LOSS_MODES`. Torch-free, so that `vibraclip --help` stays fast.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from vibraclip_core.config.loss_modes import LOSS_MODES, PAIR_LOSSES

ProfileName = Literal["tiny", "cpu", "paper"]  # the keys of config.PROFILES
# The paper's test library (QM9S test split): every released Fig. 3A/3B and missing-data value is
# a multiple of 1/12,741 (its released baseline notebook uses 12,740)
PAPER_LIBRARY_SIZE = 12_741
PAPER_PUBCHEM_SIZE = 1_075  # the PubChem set of the released Fig. 3C figures
# What the `cpu` profile is sized for: the whole book in this many minutes on this many cores
CPU_BOOK_MINUTES, CPU_BOOK_CORES = 60, 2
DEFAULT_PROFILE = "cpu"  # of get_config and the CLI: the book's profile
LossName = Literal[tuple(LOSS_MODES)]  # type: ignore[valid-type]
PairLossName = Literal[PAIR_LOSSES]  # type: ignore[valid-type]
Trainable = Literal["all", "heads", "last_layer"]  # see model.VibraCLIP.set_trainable
AugmentName = Literal["scale", "xh_scale", "mode_jitter", "width", "intensity",
                      "band_intensity", "shape", "baseline", "noise",
                      "cutoff"]  # implemented in augment.augment_sticks
# Bumped when the same `augment` names draw other perturbations (part of an augmented run's
# digest): 2 = position ranges measured on the training split (augment_ranges)
AUGMENT_VERSION = 2
TRAINABLE: tuple[str, ...] = get_args(Trainable)
AUGMENTATIONS: tuple[str, ...] = get_args(AugmentName)
# what the y values of a measured spectrum file are (`vibraclip identify --ir-y / --raman-y`)
YKind = Literal["absorbance", "transmittance", "percent-transmittance"]
Y_KINDS: tuple[str, ...] = get_args(YKind)
# baseline correction of measured spectra (`vibraclip identify --baseline`; baseline.py)
BASELINE_METHODS = ("none", "arpls")
# The transforms of the transfer model (Chapter 6, the shipped model) and their strength: chosen
# on the validation split's GFN1-xTB queries (benchmarks/augmentation_choice.py)
TRANSFER_AUGMENT = ("scale", "xh_scale", "mode_jitter", "width")
TRANSFER_STRENGTH = 1.0
# ... and the second theory mixed into its training: GFN1-xTB spectra of training molecules
# (`vibraclip simulate --set gfn1-train`; a folder relative to the repository), the probability
# that a training molecule with one is shown it, and how many of the set (the first, pinned so
# that the shipped run stays the same while the set grows); chosen on the same grid
TRANSFER_SECOND_THEORY = "data/qm9_gfn1_train"
TRANSFER_SECOND_FRACTION = 0.5
TRANSFER_SECOND_MOLECULES: int | None = 6_000
# Named sets of transforms that `--augment` takes besides a comma-separated list
AUGMENT_PRESETS: dict[str, tuple[str, ...]] = {"all": AUGMENTATIONS,
                                               "transfer": TRANSFER_AUGMENT, "none": ()}


@dataclass(frozen=True)
class FieldSpec:
    """What a field's annotation allows: `kind` bool/int/float/str/tuple, a tuple's element type
    and length (None: any), the Literal choices (of the value or of each element) and whether
    None is allowed."""

    kind: type
    element: type | None = None
    length: int | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False

    @classmethod
    def of(cls, annotation: Any) -> "FieldSpec":
        """The spec of a resolved annotation (`typing.get_type_hints`)."""
        args = get_args(annotation)
        optional = (get_origin(annotation) in (typing.Union, types.UnionType)
                    and type(None) in args)
        if optional:
            (annotation,) = [a for a in args if a is not type(None)]
        if get_origin(annotation) is tuple:
            args = get_args(annotation)
            literal = get_origin(args[0]) is Literal
            return cls(tuple, str if literal else args[0],
                       None if args[-1] is Ellipsis else len(args),
                       get_args(args[0]) if literal else None, optional)
        if get_origin(annotation) is Literal:
            return cls(str, choices=get_args(annotation), optional=optional)
        return cls(annotation, optional=optional)

    def check(self, name: str, value: Any) -> Any:
        """`value` as field `name` holds it (a sequence as a tuple of the element type); raises
        naming the field and what it allows."""
        if value is None and self.optional:
            return None
        if self.kind is tuple:
            if isinstance(value, (str, int, float)):
                raise ValueError(f"{name}={value!r}: give a sequence (list or tuple) of "
                                 f"{self.element.__name__}, e.g. {self.example()}")
            value = tuple(self.element(v) for v in value)
            if self.length is not None and len(value) != self.length:
                raise ValueError(f"{name}={value!r}: give {self.length} values")
            bad = [v for v in value if self.choices is not None and v not in self.choices]
            if bad:
                raise ValueError(f"{name}={value!r}: {bad} not among {list(self.choices)}")
        elif self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}={value!r}: choose one of {list(self.choices)}")
        return value

    def example(self) -> tuple:
        """A valid value of a tuple field, for error messages."""
        if self.choices:
            return self.choices[:2]
        return tuple(self.element(v) for v in (0, 1))
