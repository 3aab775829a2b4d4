# Type information for the compiled core (_ext/_core.pyx); checked by mypy's stubtest.
from typing import Any, Dict, Optional, Tuple

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

ACTIVATION_CODES: Dict[str, int]
PANEL_WIDTHS: Dict[int, Tuple[int, int, int]]
TUNING: Dict[str, int]
openmp_enabled: bool
openmp_version: int
micro_kernel: str
MR: int
LANES: bool
LANES_MIN_POINTS: int
WINOGRAD: bool
WINOGRAD_G: Dict[int, np.ndarray]

def default_thread_count() -> int: ...
def find_kernel(itemsize: int, kind: str, nr: int, taps: int = ..., spacing: int = ...) -> Optional[str]: ...
def data_address(array: np.ndarray) -> int: ...

@disjoint_base
class PackedKernel:
    weights: np.ndarray
    bias: Optional[np.ndarray]
    kernel_size: Tuple[int, int, int]
    strides: Tuple[int, int, int]
    dilations: Tuple[int, int, int]
    channels: int
    filters: int
    nr: int
    filter_blocks: int
    max_axis_taps: int
    max_taps: int
    axis_taps: np.ndarray
    axis_delta: np.ndarray
    phase_offset: np.ndarray
    column_weights: Optional[np.ndarray]
    column_bias: Optional[np.ndarray]
    column_nr: int
    column_blocks: int
    column_cost: int
    column_zeros: bool
    column_needs: Optional[np.ndarray]
    lanes_weights: Optional[np.ndarray]
    lanes_offset: Optional[np.ndarray]
    winograd_weights: Optional[np.ndarray]
    winograd_taps: int
    origin: Tuple[int, int, int]
    def __init__(self, kernel: npt.ArrayLike, bias: Optional[npt.ArrayLike],
                 strides: Tuple[int, int, int], dilations: Tuple[int, int, int],
                 dtype: npt.DTypeLike, origin: Optional[Tuple[int, int, int]] = ...) -> None: ...
    @staticmethod
    def nbytes_for(kernel_size: Tuple[int, int, int], filters: int, channels: int,
                   dtype: npt.DTypeLike) -> int: ...
    @property
    def dtype(self) -> np.dtype: ...
    def plan(self, input_shape: Tuple[int, ...], output_shape: Tuple[int, ...],
             crops: Tuple[int, int, int], activation: int = ..., num_threads: int = ...) -> Plan: ...

@disjoint_base
class Plan:
    kernel: PackedKernel
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    crops: Tuple[int, int, int]
    threads: int
    activation: int
    def __new__(cls, kernel: PackedKernel, input_shape: Tuple[int, ...],
                output_shape: Tuple[int, ...], crops: Tuple[int, int, int], activation: int,
                threads: int) -> Plan: ...
    def explain(self) -> Dict[str, Any]: ...
    def shape_of(self, first: int) -> Tuple[int, ...]: ...
    def run(self, x: np.ndarray, out: np.ndarray) -> None: ...

def conv3d_transpose(x: np.ndarray, kernel: PackedKernel, out: np.ndarray,
                     crops: Tuple[int, int, int], activation: int = ...,
                     num_threads: int = ...) -> None: ...
def to_channels_last(x: np.ndarray, out: np.ndarray, num_threads: int = ...) -> None: ...
def to_channels_first(y: np.ndarray, out: np.ndarray, num_threads: int = ...) -> None: ...
