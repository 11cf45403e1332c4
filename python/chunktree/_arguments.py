"""What every call checks and makes: arrays (where they live, new ones of the same library, the
stream to enqueue on) and arguments (checked here, so that a wrong one is a TypeError or ValueError
that names it and says what it must be)."""

from __future__ import annotations

import math
import numbers
import operator
import sys
from typing import Any, Optional, Tuple

Array = Any  # a DLPack-capable array (torch.Tensor, cupy.ndarray, jax.Array, numpy.ndarray)


def _type_name(value: Any) -> str:
    """The type of `value` as an error names it: a builtin's bare name, another library's with the
    library (numpy.bool is not a bool)."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"


# ------------------------------------------------------------------------------------------------
# Arrays: where they live, and new ones of the same library

def _library(array: Array) -> str:
    return type(array).__module__.split(".")[0]


def _on_cuda(array: Array) -> bool:
    """Whether DLPack places the array on a CUDA device (kDLCUDA)."""
    if type(array).__module__ == "torch" and sys.modules["torch"].version.hip is None:
        return array.is_cuda  # as DLPack would say, without torch's __dlpack_device__ (Python, ~1 µs: twice an eager layer)
    device = getattr(array, "__dlpack_device__", None)
    return device is not None and device()[0] == 2  # kDLCUDA


def _empty(like: Array, shape: Tuple[int, ...], dtype: Optional[str] = None) -> Array:
    """A new array of the same library, device and (unless given) dtype as `like`."""
    library = _library(like)
    if library == "torch":
        import torch
        return torch.empty(shape, dtype=getattr(torch, dtype) if dtype else like.dtype, device=like.device)
    if library == "numpy":
        import numpy
        return numpy.empty(shape, dtype=dtype or like.dtype)
    if library == "cupy":
        import cupy
        with like.device:
            return cupy.empty(shape, dtype=dtype or like.dtype)
    raise ValueError(f"cannot allocate outputs for a {_type_name(like)}; pass out= (and lse=) as writable arrays "
                     "(torch, cupy or numpy)")


_torch_has_gpu = False  # once true, stays true: a process does not lose its GPUs


def _torch_on_gpu() -> bool:
    """Whether torch is loaded and sees a GPU (asked once it does: torch.cuda.is_available() costs
    microseconds on every plan())."""
    global _torch_has_gpu
    if not _torch_has_gpu:
        _torch_has_gpu = "torch" in sys.modules and sys.modules["torch"].cuda.is_available()
    return _torch_has_gpu


def _torch_current_stream(torch: Any, device: Any) -> int:
    """The cudaStream_t of torch's current stream on `device` (None: the current device). torch's
    raw-stream getter, where it has one, skips building a Stream object (~5 µs a call)."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is None:
        return torch.cuda.current_stream(device).cuda_stream
    return raw(torch.cuda.current_device() if device is None else device.index)


def _stream_argument(stream: Optional[int]) -> Optional[int]:
    """A given stream checked where the call runs on the CPU too (it is not used there)."""
    return None if stream is None else _integer(stream, "stream (a cudaStream_t handle)", bounds=_UINT64)


def _stream(array: Optional[Array], stream: Optional[int]) -> int:
    """The CUDA stream to enqueue on: the given handle, else the current stream of the array's library
    (with no array: of torch or cupy, whichever is loaded), else the default stream."""
    if stream is not None:
        return _stream_argument(stream)
    device = None
    if array is not None:
        library = _library(array)
        if library == "torch":
            if not _on_cuda(array):
                return 0
            device = array.device
    else:
        library = "torch" if _torch_on_gpu() else ("cupy" if "cupy" in sys.modules else "")
    if library == "torch":
        import torch
        return _torch_current_stream(torch, device)
    if library == "cupy":
        import cupy
        return cupy.cuda.get_current_stream().ptr
    return 0


# ------------------------------------------------------------------------------------------------
# Arguments

_INT32 = (-2**31, 2**31 - 1)
_UINT64 = (0, 2**64 - 1)


def _integer(value: Any, name: str, bounds: Optional[Tuple[int, int]] = _INT32) -> int:
    """value as an int within bounds (None: any); bools (a 0-d bool array or tensor too) and floats
    are not ints."""
    if type(value) is not int:  # a plain int (every layer's `layer`) skips the tests for the rest
        if _is_bool(value):
            raise TypeError(f"{name} must be an int, got {_type_name(value)}{' of dtype bool' if _is_bool_array(value) else ''}")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an int, got {_type_name(value)}") from None
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        if bounds is _INT32:  # the C++ API's int, not the argument's own range (which the call checks and names)
            raise ValueError(f"{name} must fit in a 32-bit int (the call checks its own range within that), got {value}")
        raise ValueError(f"{name} must be within [{bounds[0]}, {bounds[1]}], got {value}")
    return value


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_type_name(value)}")
    return float(value)


_THREADS = (0, 2**31 - 1)  # num_threads: 0 is one per hardware thread
_HEADS = (1, 2**31 - 1)  # num_q_heads given (None is the default: 0 never reaches the C++ API's "default")
_F32_ROUNDS_TO_ZERO = 2.0**-150  # magnitudes up to this are 0 in float32, the C++ API's "default"
_F32_MAX = 3.4028234663852886e38  # float32's largest: a larger scale would reach the C++ API (which bounds it) as inf


def _scale(value: Any, name: str) -> float:
    """The softmax scale for the C++ API, where 0 means 1/sqrt(head_dim): None gives that 0, and a
    given scale must be finite and not 0 in float32 (it would silently turn into the default)."""
    if value is None:
        return 0.0
    scale = _real(value, name)
    if not math.isfinite(scale) or abs(scale) <= _F32_ROUNDS_TO_ZERO:
        raise ValueError(f"{name} must be a finite number other than 0, got {scale}; leave it None for 1/sqrt(head_dim)")
    if abs(scale) > _F32_MAX:
        raise ValueError(f"{name} {scale} is past float32's range (largest {_F32_MAX:.3g}); pass a smaller one")
    return scale


def _instance(value: Any, kind: type, name: str, expected: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {expected}, got {_type_name(value)}")
    return value


def _is_bool_array(value: Any) -> bool:
    """A 0-d array or tensor of dtype bool: operator.index takes torch's as 0 or 1. By the dtype's kind
    (numpy, cupy, jax), else as torch's bool: str() of a numpy dtype costs microseconds, and numpy's
    int scalars come here too."""
    if getattr(value, "ndim", None) != 0:
        return False
    dtype = getattr(value, "dtype", None)
    kind = getattr(dtype, "kind", None)
    if kind is not None:
        return kind == "b"
    torch = sys.modules.get("torch")
    return torch is not None and dtype is torch.bool


def _is_bool(value: Any) -> bool:
    """A bool: Python's, numpy's (a scalar of 0 dimensions and kind b), or a 0-d bool array."""
    return isinstance(value, bool) or _is_bool_array(value)


def _flag(value: Any, name: str) -> bool:
    """A bool, or numpy's (an engine's flags often come from numpy arrays)."""
    if _is_bool(value):
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), got {_type_name(value)}")


def _handle(value: Any, name: str = "seq") -> int:
    """A sequence handle; an int that no handle can be is unknown (KeyError), like a removed one."""
    handle = _integer(value, name, bounds=None)
    if not _UINT64[0] <= handle <= _UINT64[1]:
        raise KeyError(f"{name}: {handle} is not a sequence handle; use a handle returned by add or fork")
    return handle


def _is_sequence(value: Any) -> bool:
    """A list, tuple, range or array: something with a length that can be indexed, but no string
    and no 0-d array (a scalar, such as a token from logits.argmax())."""
    return (hasattr(value, "__len__") and hasattr(value, "__getitem__") and not isinstance(value, (str, bytes, dict))
            and getattr(value, "ndim", None) != 0)


def _sequence(value: Any, name: str, expected: str) -> tuple:
    if not _is_sequence(value):
        zero_d = " of 0 dimensions (a scalar); wrap it in a list" if getattr(value, "ndim", None) == 0 else ""
        raise TypeError(f"{name} must be {expected}, got {_type_name(value)}{zero_d}")
    return tuple(value)


def _unreadable_numpy_dtype(dtype: Any) -> bool:
    """A numpy dtype that no array can hand over (DLPack has no code for it): objects, strings, dates,
    records and raw bytes, and floats wider than 64 bits. ml_dtypes' bfloat16 (kind V) is read."""
    kind = dtype.kind
    return kind in "OSUMm" or (kind == "V" and dtype.name != "bfloat16") or dtype.itemsize > (16 if kind == "c" else 8)


def _array(value: Any, name: str, layout: str) -> Array:
    """value if it is an array (DLPack) of as many dimensions as `layout` names ("[tokens, heads]")."""
    library = _library(value)
    # torch first: torch.compile traces this check (through PagedAttention.run), not hasattr on a tensor.
    if not (library == "torch" or (hasattr(value, "__dlpack__") and hasattr(value, "shape"))):
        raise TypeError(f"{name} must be an array {layout} (torch, cupy, jax or numpy), got {_type_name(value)}")
    dims = layout.count(",") + 1
    if len(value.shape) != dims:
        raise ValueError(f"{name} must have {dims} dimensions {layout}, got shape {tuple(value.shape)}")
    if library == "numpy" and any(stride % value.itemsize for stride in value.strides):
        raise ValueError(f"{name}'s strides {value.strides} (bytes) are not whole elements of {value.itemsize} bytes; pass {name}.copy()")
    if library == "numpy" and _unreadable_numpy_dtype(value.dtype):
        raise TypeError(f"{name} has dtype {value.dtype}, which chunktree cannot read; pass float32, float16 or bfloat16 (int32 for slots)")
    if library == "torch" and value.is_meta:
        raise ValueError(f"{name} is a meta tensor (no data); pass a CPU or CUDA tensor")
    if library == "numpy" and value.dtype.byteorder == ">":
        raise ValueError(f"{name} is big-endian ({value.dtype}); pass {name}.astype({value.dtype.newbyteorder('=').str!r})")
    return value


def _writable(value: Any, name: str, layout: str) -> Array:
    """An array that a call writes: `_array`, and not read-only (a numpy array whose writeable flag
    is off, or a jax array, which is immutable)."""
    value = _array(value, name, layout)
    if _library(value) in ("jax", "jaxlib") or not getattr(getattr(value, "flags", None), "writeable", True):
        raise ValueError(f"{name} is read-only; pass a writable array {layout} (torch, cupy or numpy)")
    return value


def _holds_a_bool(values: Any) -> bool:
    """Whether nested lists or tuples hold a bool (Python's or numpy's) anywhere."""
    return any(_holds_a_bool(value) if _is_sequence(value) else _is_bool(value) for value in values)


def _int32_array(values: Any, name: str, shape: Tuple[Optional[int], ...], layout: str):
    """values (a numpy array, a CPU tensor, or nested lists of ints) as a C-contiguous numpy int32
    array of `shape` (None: any extent). Nothing is converted silently: floats, bools, values that
    int32 cannot hold, and any other shape are refused rather than truncated, wrapped or reshaped."""
    import numpy
    if (type(values) is numpy.ndarray and values.dtype == numpy.int32 and values.flags.c_contiguous and values.ndim == len(shape)
            and all(want is None or got == want for want, got in zip(shape, values.shape))):
        return values  # slots as add and append return them (every layer's write_kv): nothing to convert or check
    if _on_cuda(values):
        raise ValueError(f"{name} must be a host array {layout}, got one on a CUDA device; pass .cpu() of it")
    if not _is_sequence(values):
        raise TypeError(f"{name} must be {layout} ints (a numpy array, a CPU tensor or a list), got {_type_name(values)}")
    try:
        array = numpy.asarray(values)
    except (TypeError, ValueError) as error:  # ragged lists, arrays numpy cannot read
        raise ValueError(f"{name} must be {layout} ints, got a {_type_name(values)} that is not one: {error}") from None
    if array.ndim != len(shape) or any(want is not None and got != want for want, got in zip(shape, array.shape)):
        raise ValueError(f"{name} must have shape {layout}, got shape {tuple(array.shape)}")
    untyped_empty = array.size == 0 and not hasattr(values, "dtype")  # numpy reads an empty list as float64
    if array.dtype.kind not in "iu" and not untyped_empty:
        raise ValueError(f"{name} must hold ints (an integer dtype; not bool or float), got dtype {array.dtype}")
    if not hasattr(values, "dtype") and array.size and _holds_a_bool(values):  # numpy reads [7, True] as ints
        raise ValueError(f"{name} must hold ints, not bools; got a bool among them")
    if array.size and array.dtype != numpy.int32 and (array.min() < _INT32[0] or array.max() > _INT32[1]):
        raise ValueError(f"{name} must hold int32 values, got values from {array.min()} to {array.max()}")
    return numpy.ascontiguousarray(array, dtype=numpy.int32)


# ------------------------------------------------------------------------------------------------
# Outputs of an attention call

_Q_LAYOUT = "[tokens, q_heads, head_dim]"


def _outputs(q: Array, out: Optional[Array], lse: Optional[Array], return_lse: bool):
    """out (like q) and lse ([tokens, q_heads] float32, or None): the given arrays, else new ones."""
    return_lse = _flag(return_lse, "return_lse")
    out = _empty(q, tuple(q.shape)) if out is None else _writable(out, "out", _Q_LAYOUT)
    if lse is not None:
        lse = _writable(lse, "lse", "[tokens, q_heads]")
    elif return_lse:
        lse = _empty(q, (q.shape[0], q.shape[1]), "float32")
    return out, lse
