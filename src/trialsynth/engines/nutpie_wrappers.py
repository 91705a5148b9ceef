"""nutpie's two C wrappers, regenerated so that numba's disk cache finds them again.

nutpie 0.16 builds the ``numba.cfunc`` wrappers around the pytensor logp and expand
functions as closures (``_make_c_logp_func`` and ``_make_c_expand_func`` in
``nutpie/compile_pymc.py``). Numba's cache key hashes the pickled closure cells. A pickled
numba dispatcher carries a UUID that is new in every process (numba issue 6264), and
nutpie names the shared-data fields ``uuid4().hex``. So every process writes a new entry
and reads none, and it compiles the wrappers again, inlined pytensor function included:
4-10 s for a model this machine compiled before.

:func:`cacheable_wrappers` swaps in generated source that has no closure. The dimensions
are literals, each shared array is read from a literal word offset into nutpie's
``user_data`` record, and the pytensor function is a global. The source is registered with
pytensor's numba cache locator (``compile_numba_function_src(..., cache_key=...)``) under a
key that hashes :data:`WRAPPER_VERSION`, nutpie's version, the inner function's pytensor
cache key and the source itself, so the next process loads the entry. The arithmetic is
nutpie's: the draws are bit-identical to those of nutpie's own wrappers (tested). One
difference in form: the results are copied by a loop after a length check, not by
``out[...] = grad``, whose shape-mismatch error message numba compiles from string
formatting code (about 2 s of a first compile; the loop compiles in milliseconds).

For a nutpie version outside :data:`SUPPORTED_NUTPIE`, or an inner function that pytensor
could not key, nutpie's own code runs unchanged (slower, same numbers). The upstream report
is ``notes/nutpie-upstream-report.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

#: nutpie versions whose ``_make_c_logp_func``, ``_make_c_expand_func`` and
#: ``make_user_data`` this module reproduces (checked against their source).
SUPPORTED_NUTPIE = ("0.16.11",)
#: Bump when the generated source changes meaning (the source itself is hashed into every
#: cache key too); it is part of the toolchain and of a fit's key.
WRAPPER_VERSION = 1
#: numpy dtypes a shared array may have (``np.<name>`` in the generated source).
DTYPES = frozenset({"float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool"})

_WORD = 8  # bytes of the np.uintp / np.uint fields of nutpie's user_data record
_LOCK = threading.RLock()
_ORIGINAL: dict[str, Any] = {}
#: How many wrappers were generated, and how many fell back to nutpie's (this process).
STATS = {"generated": 0, "fallback": 0}

_LOGP = """
def {name}(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
{extract}
        logp_val, grad = inner(x{args})
        if grad.shape[0] != {n_dim}:
            return 1
        logp[()] = logp_val
        for i in range({n_dim}):
            out[i] = grad[i]
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND = """
def {name}(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
{extract}
        (values,) = inner(x{args})
        if values.shape[0] != {n_expanded}:
            return -2
        for i in range({n_expanded}):
            out[i] = values[i]
    except Exception:
        return -2
    return 0
"""


class Unsupported(Exception):
    """The model needs something the generated wrappers do not reproduce."""


def supported() -> bool:
    """Whether the installed nutpie is one whose wrappers this module reproduces."""
    from importlib import metadata

    return metadata.version("nutpie") in SUPPORTED_NUTPIE


def field_offset(dtype: np.dtype[Any], *path: str) -> int:
    """Byte offset of the nested field ``path`` of a structured dtype."""
    offset = 0
    for name in path:
        if dtype.fields is None or name not in dtype.fields:
            raise Unsupported(f"user_data has no field {'.'.join(path)}")
        sub, off = dtype.fields[name][:2]
        offset += off
        dtype = sub
    return offset


def extract_source(
    user_data_dtype: np.dtype[Any], keys: list[str], shared: dict[str, np.ndarray]
) -> str:
    """Source lines that rebuild each shared array ``a0, a1, ...`` from ``user_data``.

    nutpie's record stores, per shared array, its data pointer, its size and its shape
    (all 8-byte words). The offsets are written as literals, so the source does not
    depend on nutpie's per-process field names.

    Raises
    ------
    Unsupported
        For a dtype outside :data:`DTYPES` or a record laid out otherwise.
    """
    if not keys:
        return ""
    if user_data_dtype.itemsize % _WORD:
        raise Unsupported("user_data is not made of 8-byte words")
    n_words = user_data_dtype.itemsize // _WORD
    lines = [f"        u = numba.carray(user_data_, ({n_words},), np.uint64)"]
    for i, key in enumerate(keys):
        arr = shared[key]
        dtype = np.dtype(arr.dtype)
        if dtype.name not in DTYPES or not dtype.isnative:
            raise Unsupported(f"shared array of dtype {dtype}")
        data_w = field_offset(user_data_dtype, "shared", "data", key) // _WORD
        shape_w = field_offset(user_data_dtype, "shared", "shape", key) // _WORD
        dims = [f"int(u[{shape_w + d}])" for d in range(arr.ndim)]
        shape = f"({dims[0]},)" if arr.ndim == 1 else f"({', '.join(dims)})"
        lines.append(
            f"        a{i} = numba.carray(_as_voidptr(u[{data_w}]), {shape}, np.{dtype.name})"
        )
    return "\n".join(lines)


def _as_voidptr_intrinsic() -> Any:
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def _as_voidptr(typingctx: Any, src: Any) -> Any:
        """A void pointer from an integer address (nutpie's address_as_void_pointer)."""

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.inttoptr(args[0], cgutils.voidptr_t)

        return types.voidptr(src), codegen

    return _as_voidptr


_AS_VOIDPTR: list[Any] = []


def inner_key(fn: Any) -> str | None:
    """The pytensor numba cache key of a compiled pytensor function's ``jit_fn``, or None."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    py_func = getattr(fn, "py_func", None)
    return None if py_func is None else CACHED_SRC_FUNCTIONS.get(py_func)


def compile_source(kind: str, src: str, inner: Any, key: str) -> Any:
    """The Python function of ``src``, registered with pytensor's numba cache under a key."""
    import numba
    import nutpie
    from pytensor.link.numba.cache import compile_numba_function_src

    if not _AS_VOIDPTR:
        _AS_VOIDPTR.append(_as_voidptr_intrinsic())
    cache_key = hashlib.sha256(
        f"{WRAPPER_VERSION}|{nutpie.__version__}|{key}|{src}".encode()
    ).hexdigest()
    # __name__ must name an importable module: numba pickles the function's environment
    # under it and imports that module when it loads the cached entry.
    env = {
        "__name__": __name__,
        "numba": numba,
        "np": np,
        "inner": inner,
        "_as_voidptr": _AS_VOIDPTR[0],
    }
    name = f"trialsynth_nutpie_{kind}"
    return compile_numba_function_src(src, name, global_env=env, cache_key=cache_key)


def c_signature(kind: str) -> Any:
    """The C signature nutpie gives the logp or expand wrapper."""
    import numba

    t = numba.types
    dbl = t.CPointer(t.double)
    if kind == "logp":
        return t.int64(t.uint64, dbl, dbl, dbl, t.voidptr)
    return t.int64(t.uint64, t.uint64, dbl, dbl, t.voidptr)


def make_c_logp_func(
    n_dim: int,
    logp_fn: Any,
    user_data: np.ndarray,
    shared_keys: list[str],
    shared_data: dict[str, np.ndarray],
) -> tuple[Any, Any]:
    """Drop-in for nutpie's ``_make_c_logp_func`` that numba can cache across processes."""
    key = inner_key(logp_fn)
    try:
        if key is None:
            raise Unsupported("the logp function has no pytensor cache key")
        extract = extract_source(user_data.dtype, list(shared_keys), shared_data)
    except Unsupported:
        STATS["fallback"] += 1
        return _ORIGINAL["logp"](n_dim, logp_fn, user_data, shared_keys, shared_data)
    args = "".join(f", a{i}" for i in range(len(shared_keys)))
    src = _LOGP.format(name="trialsynth_nutpie_logp", n_dim=n_dim, extract=extract, args=args)
    STATS["generated"] += 1
    return compile_source("logp", src, logp_fn, key), c_signature("logp")


def make_c_expand_func(
    n_dim: int,
    n_expanded: int,
    expand_fn: Any,
    user_data: np.ndarray,
    shared_keys: list[str],
    shared_data: dict[str, np.ndarray],
) -> tuple[Any, Any]:
    """Drop-in for nutpie's ``_make_c_expand_func`` that numba can cache across processes."""
    key = inner_key(expand_fn)
    try:
        if key is None:
            raise Unsupported("the expand function has no pytensor cache key")
        extract = extract_source(user_data.dtype, list(shared_keys), shared_data)
    except Unsupported:
        STATS["fallback"] += 1
        return _ORIGINAL["expand"](
            n_dim, n_expanded, expand_fn, user_data, shared_keys, shared_data
        )
    args = "".join(f", a{i}" for i in range(len(shared_keys)))
    src = _EXPAND.format(
        name="trialsynth_nutpie_expand",
        n_dim=n_dim,
        n_expanded=n_expanded,
        extract=extract,
        args=args,
    )
    STATS["generated"] += 1
    return compile_source("expand", src, expand_fn, key), c_signature("expand")


@contextlib.contextmanager
def cacheable_wrappers() -> Iterator[bool]:
    """Within the block, nutpie builds cacheable wrappers; yields whether it does.

    Pass ``cache=True`` to ``nutpie.compile_pymc_model`` inside the block (it hands it to
    ``numba.cfunc``). Yields False, and changes nothing, for an unsupported nutpie.
    """
    if not supported():
        yield False
        return
    from nutpie import compile_pymc

    with _LOCK:
        _ORIGINAL["logp"] = compile_pymc._make_c_logp_func
        _ORIGINAL["expand"] = compile_pymc._make_c_expand_func
        compile_pymc._make_c_logp_func = make_c_logp_func
        compile_pymc._make_c_expand_func = make_c_expand_func
        try:
            yield True
        finally:
            compile_pymc._make_c_logp_func = _ORIGINAL["logp"]
            compile_pymc._make_c_expand_func = _ORIGINAL["expand"]
