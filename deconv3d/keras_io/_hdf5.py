"""HDF5 access shared by both Keras layouts: the h5py import and attribute text."""

from __future__ import annotations

from typing import List

import numpy as np

INSTALL_HINT = 'pip install "deconv3d[keras]"'


def h5py():
    """The h5py module, or an ImportError that says how to install it."""
    try:
        import h5py  # here, not at the top: optional, and only needed to read files
    except ImportError as error:
        raise ImportError(f"Reading Keras files needs h5py, which is not installed; install "
                          f"it with: {INSTALL_HINT}") from error
    return h5py


def text(value) -> str:
    """An HDF5 attribute (bytes, a 0-d array or a str) as a str."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def text_list(value) -> List[str]:
    """An HDF5 attribute holding a list of names, as a list of str."""
    if value is None:
        return []
    return [text(v) for v in np.asarray(value).ravel() if not isinstance(v, float)]
