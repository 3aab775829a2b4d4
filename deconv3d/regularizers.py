"""Keras regularizer and constraint names, kept for the layer's config.

They shape training, not inference: deconv3d accepts and round-trips them so
that a Keras config loads unchanged, and never applies them.
"""

from __future__ import annotations

import numbers

from .serialization import Catalogue, KerasObject

# L1 and OrthogonalRegularizer store their factor as float32 in Keras, which
# shows up in their configs as 0.009999999776482582.
_FLOAT32_CENTI = 0.009999999776482582

def _regularizer(class_name: str, config: dict) -> KerasObject:
    """Keras checks that every penalty factor is a non-negative number."""
    for key in ("l1", "l2", "factor"):
        if key in config:
            value = config[key]
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not value >= 0):
                raise ValueError(f"Value for argument `{key}` of {class_name} must be a "
                                 f"non-negative float, got {value!r}")
    return KerasObject("keras.regularizers", class_name, config)


REGULARIZERS = Catalogue(
    "regularizer", "keras.regularizers",
    {"L1": {"l1": _FLOAT32_CENTI}, "L2": {"l2": 0.01}, "L1L2": {"l1": 0.0, "l2": 0.0},
     "OrthogonalRegularizer": {"factor": _FLOAT32_CENTI, "mode": "rows"},
     "Regularizer": {}},
    {"l1": "L1", "l2": "L2", "l1l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer",
     "regularizer": "Regularizer"}, _regularizer)

CONSTRAINTS = Catalogue(
    "constraint", "keras.constraints",
    {"MaxNorm": {"max_value": 2, "axis": 0},
     "MinMaxNorm": {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0},
     "NonNeg": {}, "UnitNorm": {"axis": 0}, "Constraint": {}},
    {"max_norm": "MaxNorm", "min_max_norm": "MinMaxNorm", "non_neg": "NonNeg",
     "unit_norm": "UnitNorm", "constraint": "Constraint"})


def get_regularizer(identifier, argument: str = ""):
    return REGULARIZERS.get(identifier, argument)


def get_constraint(identifier, argument: str = ""):
    return CONSTRAINTS.get(identifier, argument)
