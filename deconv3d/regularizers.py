"""Keras regularizer and constraint names, kept for the layer's config.

They shape training, not inference: deconv3d accepts and round-trips them so
that a Keras config loads unchanged, and never applies them.
"""

from __future__ import annotations

from .serialization import Catalogue

# L1 and OrthogonalRegularizer store their factor as float32 in Keras, which
# shows up in their configs as 0.009999999776482582.
_FLOAT32_CENTI = 0.009999999776482582

REGULARIZERS = Catalogue(
    "regularizer", "keras.regularizers",
    {"L1": {"l1": _FLOAT32_CENTI}, "L2": {"l2": 0.01}, "L1L2": {"l1": 0.0, "l2": 0.0},
     "OrthogonalRegularizer": {"factor": _FLOAT32_CENTI, "mode": "rows"},
     "Regularizer": {}},
    {"l1": "L1", "l2": "L2", "l1l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer",
     "regularizer": "Regularizer"})

CONSTRAINTS = Catalogue(
    "constraint", "keras.constraints",
    {"MaxNorm": {"max_value": 2, "axis": 0},
     "MinMaxNorm": {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0},
     "NonNeg": {}, "UnitNorm": {"axis": 0}, "Constraint": {}},
    {"max_norm": "MaxNorm", "min_max_norm": "MinMaxNorm", "non_neg": "NonNeg",
     "unit_norm": "UnitNorm", "constraint": "Constraint"})


def get_regularizer(identifier):
    return REGULARIZERS.get(identifier)


def get_constraint(identifier):
    return CONSTRAINTS.get(identifier)
