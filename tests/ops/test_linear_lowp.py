"""whispermedia::linear_f16w and linear_i8w (CPU only): float32 linears on float16- and
int8-stored weights, against a float64 evaluation and the reference on odd sizes, with batch
invariance, strides, threads, errors, opcheck and torch.compile; and ``ops.linear``'s
dispatch between them and the reference."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from whispermedia import ops
from whispermedia.ops import reference

needs_f16w = pytest.mark.skipif(not ops.has_kernel("linear_f16w"), reason="whispermedia._C has no linear_f16w kernel")
needs_i8w = pytest.mark.skipif(not ops.has_kernel("linear_i8w"), reason="whispermedia._C has no linear_i8w kernel")


def _inputs(M, N, K, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(M, K, generator=g)
    w = (torch.randn(N, K, generator=g) * 0.1).half()
    b = torch.randn(N, generator=g) if bias else None
    return x, w, b


def _int8_inputs(M, N, K):
    g = torch.Generator().manual_seed(M * N + K)
    x = torch.randn(M, K, generator=g)
    w = torch.randint(-127, 128, (N, K), generator=g, dtype=torch.int8)
    scale = torch.rand(N, generator=g) / 100
    b = torch.randn(N, generator=g)
    return x, w, scale, b


def _float32_sum_tolerance(x, w_abs, K):
    """The error bound of any float32 summation order of K products: 4 K eps |x| |w|."""
    return 4 * K * torch.finfo(torch.float32).eps * (x.abs().double() @ w_abs.T).max().item()


# -- linear_f16w ----------------------------------------------------------------------------

@needs_f16w
@pytest.mark.parametrize("M", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("N,K", [(1, 1), (3, 7), (4, 8), (13, 64), (517, 512), (64, 2048), (9, 515)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_f16w_matches_float32_linear(M, N, K, bias):
    x, w, b = _inputs(M, N, K, bias=bias)
    got = torch.ops.whispermedia.linear_f16w(x, w, b)
    assert got.dtype == torch.float32 and got.shape == (M, N)
    want = F.linear(x.double(), w.double(), None if b is None else b.double())
    torch.testing.assert_close(got.double(), want, rtol=0, atol=_float32_sum_tolerance(x, w.double().abs(), K) + 1e-7)
    # and as close to the reference (torch's own float32 GEMM on the widened weights) as two
    # float32 sums get
    torch.testing.assert_close(got, reference.linear_f16w(x, w, b), rtol=1e-5, atol=1e-5)


@needs_f16w
def test_linear_f16w_shapes_strides_and_batch_invariance():
    x, w, b = _inputs(10, 300, 64, seed=1)
    x3 = x.view(2, 5, 64)
    got = torch.ops.whispermedia.linear_f16w(x3, w, b)
    assert got.shape == (2, 5, 300)
    # a row's result does not depend on the rows around it (greedy and beams see equal numbers)
    for m in range(10):
        alone = torch.ops.whispermedia.linear_f16w(x[m:m + 1], w, b)
        assert torch.equal(alone[0], got.view(10, 300)[m])
    # a non-contiguous x (a column slice of a wider tensor) is read correctly
    wide = torch.randn(10, 128)
    wide[:, 32:96] = x
    torch.testing.assert_close(torch.ops.whispermedia.linear_f16w(wide[:, 32:96], w, b), got.view(10, 300))
    # empty sizes
    assert torch.ops.whispermedia.linear_f16w(torch.empty(0, 64), w, b).shape == (0, 300)
    empty_k = torch.ops.whispermedia.linear_f16w(torch.empty(3, 0), torch.empty(4, 0, dtype=torch.half),
                                                 torch.arange(4.0))
    assert torch.equal(empty_k, torch.arange(4.0).expand(3, 4))


@needs_f16w
def test_linear_f16w_threads_give_the_same_result():
    x, w, b = _inputs(3, 4099, 512, seed=2)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = torch.ops.whispermedia.linear_f16w(x, w, b)
        torch.set_num_threads(max(2, saved))
        many = torch.ops.whispermedia.linear_f16w(x, w, b)
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(one, many)


@needs_f16w
def test_linear_f16w_rejects_bad_arguments():
    x, w, b = _inputs(2, 8, 16)
    with pytest.raises(RuntimeError, match="must be Half"):
        torch.ops.whispermedia.linear_f16w(x, w.float(), b)
    with pytest.raises(RuntimeError, match="must be Float"):
        torch.ops.whispermedia.linear_f16w(x.double(), w, b)
    with pytest.raises(RuntimeError, match="features"):
        torch.ops.whispermedia.linear_f16w(x[:, :15], w, b)
    with pytest.raises(RuntimeError, match="shape"):
        torch.ops.whispermedia.linear_f16w(x, w, b[:5])


@needs_f16w
def test_linear_f16w_opcheck():
    x, w, b = _inputs(3, 40, 64)
    torch.library.opcheck(torch.ops.whispermedia.linear_f16w.default, (x, w, b))
    torch.library.opcheck(torch.ops.whispermedia.linear_f16w.default, (x.view(1, 3, 64), w, None))


# -- linear_i8w -----------------------------------------------------------------------------

@needs_i8w
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (1, 19, 64), (2, 8, 515), (5, 517, 512), (3, 64, 2048)])
def test_linear_i8w_matches_its_dequantized_weights(M, N, K):
    x, w, scale, b = _int8_inputs(M, N, K)
    got = torch.ops.whispermedia.linear_i8w(x, w, scale, b)
    want = (x.double() @ w.double().T) * scale.double() + b.double()
    tol = _float32_sum_tolerance(x, w.double().abs() * scale.double()[:, None], K) + 1e-6
    torch.testing.assert_close(got.double(), want, rtol=0, atol=tol)
    # the reference rounds the dequantized weights as well: both are within tol of the exact value
    torch.testing.assert_close(got, reference.linear_i8w(x, w, scale, b), rtol=0, atol=2 * tol)
    assert torch.equal(torch.ops.whispermedia.linear_i8w(x[:1], w, scale, b)[0], got[0])  # batch invariant
    with pytest.raises(RuntimeError, match="scale"):
        torch.ops.whispermedia.linear_i8w(x, w, scale[:-1] if N > 1 else torch.ones(2), b)
    torch.library.opcheck(torch.ops.whispermedia.linear_i8w.default, (x, w, scale, b))


# -- ops.linear: which path computes what ---------------------------------------------------

@needs_f16w
@needs_i8w
def test_linear_dispatches_few_float32_rows_to_the_kernels():
    x, w, b = _inputs(5, 24, 32)
    assert torch.equal(ops.linear(x, w, b), torch.ops.whispermedia.linear_f16w(x, w, b))
    assert torch.equal(ops.linear(x[:1], w), torch.ops.whispermedia.linear_f16w(x[:1], w))
    xi, wi, scale, bi = _int8_inputs(3, 8, 515)
    assert torch.equal(ops.linear(xi, wi, bi, scale), torch.ops.whispermedia.linear_i8w(xi, wi, scale, bi))
    # the row limit counts rows of every leading dimension
    rows = torch.randn(ops.COMPACT_MAX_ROWS // 2, 2, 32)
    assert torch.equal(ops.linear(rows, w, b), torch.ops.whispermedia.linear_f16w(rows, w, b))


def test_linear_uses_the_reference_for_many_rows_other_dtypes_and_when_forced(monkeypatch):
    x, w, b = _inputs(ops.COMPACT_MAX_ROWS + 1, 24, 32)
    # many rows: the BLAS on widened weights, bit for bit the reference
    assert torch.equal(ops.linear(x, w, b), reference.linear_f16w(x, w, b))
    assert torch.equal(ops.linear(x, w.float(), b), F.linear(x, w.float(), b))  # nothing to widen
    wide = ops.linear(x.double(), w, b)
    assert wide.dtype == torch.float64
    assert torch.equal(wide, F.linear(x.double(), w.double(), b.double()))
    xi, wi, scale, bi = _int8_inputs(2, 8, 16)
    monkeypatch.setenv("WM_FORCE_REFERENCE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # forcing the reference is not a missing kernel
        assert torch.equal(ops.linear(x[:2], w, b), reference.linear_f16w(x[:2], w, b))
        assert torch.equal(ops.linear(xi, wi, bi, scale), reference.linear_i8w(xi, wi, scale, bi))
    assert ops.backend_info()["ops"]["linear_f16w"]["cpu"] == "reference"


def test_linear_without_the_kernel_warns_once(monkeypatch):
    x, w, b = _inputs(2, 8, 16)
    monkeypatch.setitem(ops._COMPILED, "linear_f16w", {"cpu": False, "cuda": False, "meta": False})
    monkeypatch.setattr(ops, "_warned", set())
    with pytest.warns(RuntimeWarning, match="linear_f16w: .*pure-torch reference"):
        assert torch.equal(ops.linear(x, w, b), reference.linear_f16w(x, w, b))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.linear(x, w, b)  # warned once only


@needs_f16w
def test_linear_under_torch_compile_fullgraph():
    x, w, b = _inputs(3, 40, 64, seed=3)
    compiled = torch.compile(lambda x: ops.linear(x, w, b), fullgraph=True, dynamic=False)
    assert torch.equal(compiled(x), ops.linear(x, w, b))


_ISA_CASES = [(M, N, K) for M in (1, 2, 3, 4, 5, 7, 8, 13, 40, 64) for N, K in ((8, 8), (17, 13), (300, 64), (67, 515))]


def _isa_outputs() -> list:
    """linear_f16w and linear_i8w on _ISA_CASES, in whatever path this process's CPU takes."""
    out = []
    for M, N, K in _ISA_CASES:
        x, w, b = _inputs(M, N, K, seed=M + N + K)
        out.append(torch.ops.whispermedia.linear_f16w(x, w, b))
        xi, wi, scale, bi = _int8_inputs(M, N, K)
        out.append(torch.ops.whispermedia.linear_i8w(xi, wi, scale, bi))
    return out


@needs_f16w
@needs_i8w
def test_the_avx512_and_avx2_paths_give_the_same_bits(tmp_path):
    """Where the CPU has AVX-512, several rows go through the AVX-512 blocks; their sums run in
    the AVX2 blocks' order, so every output has the same bits as with WM_LINEAR_ISA=avx2 (read
    once per process: the AVX2 numbers come from a child process)."""
    import os
    import subprocess
    import sys

    saved = tmp_path / "avx2.pt"
    code = ("import torch, whispermedia.ops, sys; sys.path.insert(0, sys.argv[2]); "
            "import test_linear_lowp as t; torch.save(t._isa_outputs(), sys.argv[1])")
    env = dict(os.environ, WM_LINEAR_ISA="avx2")
    subprocess.run([sys.executable, "-c", code, str(saved), os.path.dirname(__file__)], env=env, check=True)
    avx2 = torch.load(saved)
    here = _isa_outputs()
    assert len(avx2) == len(here)
    for (M, N, K), a, b in zip([c for c in _ISA_CASES for _ in (0, 1)], avx2, here):
        assert torch.equal(a, b), (M, N, K)
