# Type information for the compiled core (_ext/_core.pyx).
from typing import Dict, Optional, Tuple

import numpy as np
import numpy.typing as npt

ACTIVATION_CODES: Dict[str, int]
openmp_enabled: bool
openmp_version: int
micro_kernel: str
MR: int
ALL_PHASES_MAX_KERNEL_BYTES: int

def default_thread_count() -> int: ...

class PackedKernel:
    weights: np.ndarray
    kernel_size: Tuple[int, int, int]
    strides: Tuple[int, int, int]
    dilations: Tuple[int, int, int]
    channels: int
    filters: int
    nr: int
    filter_blocks: int
    max_axis_taps: int
    max_taps: int
    def __init__(self, kernel: npt.ArrayLike, strides: Tuple[int, int, int],
                 dilations: Tuple[int, int, int], dtype: npt.DTypeLike) -> None: ...
    @property
    def dtype(self) -> np.dtype: ...

def conv3d_transpose(x: np.ndarray, kernel: PackedKernel, bias: Optional[np.ndarray],
                     out: np.ndarray, crops: Tuple[int, int, int], activation: int = ...,
                     num_threads: int = ...) -> None: ...
def to_channels_last(x: np.ndarray, out: np.ndarray, num_threads: int = ...) -> None: ...
def to_channels_first(y: np.ndarray, out: np.ndarray, num_threads: int = ...) -> None: ...
