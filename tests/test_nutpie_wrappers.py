"""nutpie's C wrappers regenerated as cacheable source: offsets, fallbacks, same numbers."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from trialsynth.engines import nutpie_wrappers as nw


class _Var:
    """A stand-in for a shared variable: nutpie's make_user_data reads only ``ndim``."""

    def __init__(self, ndim: int) -> None:
        self.ndim = ndim


def _user_data(arrays: list[np.ndarray], prefix: str = "k"):
    from nutpie.compile_pymc import make_user_data

    keys = {_Var(a.ndim): f"{prefix}{i}" for i, a in enumerate(arrays)}
    data = {f"{prefix}{i}": a for i, a in enumerate(arrays)}
    return make_user_data(keys, data), list(data), data


def test_offsets_read_the_pointers_and_shapes_nutpie_stores():
    arrays = [np.arange(6.0).reshape(2, 3), np.array(2.5), np.arange(4, dtype=np.int32)]
    user_data, keys, _ = _user_data(arrays)
    words = np.frombuffer(user_data.tobytes(), dtype=np.uint64)
    for key, arr in zip(keys, arrays, strict=True):
        data_w = nw.field_offset(user_data.dtype, "shared", "data", key) // 8
        shape_w = nw.field_offset(user_data.dtype, "shared", "shape", key) // 8
        assert words[data_w] == arr.ctypes.data
        assert tuple(int(w) for w in words[shape_w : shape_w + arr.ndim]) == arr.shape


def test_source_does_not_see_nutpies_per_process_field_names():
    """nutpie names the fields uuid4().hex: the source (so the cache key) must not vary."""
    arrays = [np.zeros(8), np.zeros(8, dtype=np.int32), np.zeros((2, 2))]
    ud1, keys1, data1 = _user_data(arrays, "a")
    ud2, keys2, data2 = _user_data(arrays, "bbbbbbbb")
    src = nw.extract_source(ud1.dtype, keys1, data1)
    assert nw.extract_source(ud2.dtype, keys2, data2) == src
    assert "np.int32" in src and "np.float64" in src and "a2 = " in src


@pytest.mark.parametrize("dtype", [np.complex128, np.dtype(">f8")])
def test_unsupported_dtypes_are_refused(dtype):
    user_data, keys, data = _user_data([np.zeros(3, dtype=dtype)])
    with pytest.raises(nw.Unsupported):
        nw.extract_source(user_data.dtype, keys, data)


def test_another_nutpie_version_leaves_nutpie_alone(monkeypatch):
    from nutpie import compile_pymc

    original = compile_pymc._make_c_logp_func
    monkeypatch.setattr(nw, "SUPPORTED_NUTPIE", ("0.0.0",))
    with nw.cacheable_wrappers() as on:
        assert on is False
        assert compile_pymc._make_c_logp_func is original
    assert compile_pymc._make_c_logp_func is original


def test_nutpie_is_restored_after_an_error():
    from nutpie import compile_pymc

    original = compile_pymc._make_c_expand_func
    with pytest.raises(KeyError), nw.cacheable_wrappers():
        assert compile_pymc._make_c_expand_func is nw.make_c_expand_func
        raise KeyError("boom")
    assert compile_pymc._make_c_expand_func is original


def _logp_at(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    proto = ctypes.CFUNCTYPE(
        ctypes.c_int64,
        ctypes.c_uint64,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    )
    f = proto(compiled.compiled_logp_func.address)
    grad, logp = np.zeros(compiled.n_dim), np.zeros(())
    rc = f(
        compiled.n_dim,
        x.ctypes.data,
        grad.ctypes.data,
        logp.ctypes.data,
        compiled.user_data.ctypes.data,
    )
    return rc, float(logp), grad


@pytest.mark.mcmc
def test_generated_wrappers_give_nutpies_numbers_bit_for_bit():
    """Same logp and gradient as nutpie's closures at random points, after with_data too."""
    import nutpie
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", np.array([0.1, -0.3, 0.5]))
        s = pm.Data("s", np.array([0.2, 0.4, 0.3]))
        mu = pm.Normal("mu", 0, 2)
        tau = pm.HalfNormal("tau", 0.5)
        z = pm.Normal("z", 0, 1, shape=3)
        pm.Normal("obs", mu + tau * z, s, observed=y)
    import pytensor

    # fastmath off, as every fit compiles (trialsynth.engines.mcmc.compile_model)
    with pytensor.config.change_flags(numba__fastmath=False):
        theirs = nutpie.compile_pymc_model(model, freeze_model=False)
        before = dict(nw.STATS)
        with nw.cacheable_wrappers() as on:
            ours = nutpie.compile_pymc_model(model, freeze_model=False, cache=True)
    assert on and nw.STATS["generated"] == before["generated"] + 2, (before, nw.STATS)
    new = {"y": np.array([1.0, 2.0, -1.0]), "s": np.array([0.5, 0.5, 1.0])}
    rng = np.random.default_rng(1)
    for a, b in [(theirs, ours), (theirs.with_data(**new), ours.with_data(**new))]:
        for _ in range(20):
            x = rng.normal(size=a.n_dim)
            rc_a, logp_a, grad_a = _logp_at(a, x)
            rc_b, logp_b, grad_b = _logp_at(b, x)
            assert rc_a == rc_b == 0, (rc_a, rc_b)
            assert logp_a == logp_b, (x, logp_a, logp_b)
            np.testing.assert_array_equal(grad_a, grad_b, err_msg=str(x))
    # the new data changed the numbers (the test reads the data it was given)
    assert _logp_at(ours, x)[1] != _logp_at(ours.with_data(**new), x)[1]
