"""whispermedia::cross_attention (CPU only): softmax(scale * q @ k^T) @ v over the cached encoder
K/V, against a float64 evaluation and the reference (PyTorch's SDPA), on odd sizes, with errors,
opcheck and torch.compile; and ``ops.cross_attention``'s dispatch between them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from whispermedia import ops
from whispermedia.ops import reference

pytestmark = pytest.mark.skipif(not ops.has_kernel("cross_attention"),
                                reason="whispermedia._C has no cross_attention kernel")


def _inputs(A, H, G, S, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(A, H, G, D, generator=g)
    k = torch.randn(A, H, S, D, generator=g)
    v = torch.randn(A, H, S, D, generator=g)
    return q, k, v


def _float64(q, k, v, scale):
    return (((q.double() @ k.double().transpose(-1, -2)) * scale).softmax(-1) @ v.double())


# (audios, heads, rows, positions, head_dim): a beam step of base (5 rows, 8 heads, 1500
# positions), greedy, tiny's 6 heads, a prompt's several rows, one position, odd dims
CASES = [(1, 8, 1, 1500, 64), (1, 8, 5, 1500, 64), (2, 6, 3, 224, 64), (1, 6, 1, 1, 64), (1, 8, 4, 3, 20),
         (3, 2, 7, 37, 72), (1, 1, 2, 9, 8), (1, 1, 1, 5, 1), (2, 6, 10, 448, 64)]


@pytest.mark.parametrize("A,H,G,S,D", CASES, ids=str)
def test_within_twice_the_references_error_of_float64(A, H, G, S, D):
    q, k, v = _inputs(A, H, G, S, D)
    scale = D ** -0.5
    got = torch.ops.whispermedia.cross_attention(q, k, v, scale)
    want = _float64(q, k, v, scale)
    sdpa_error = (reference.cross_attention(q, k, v, scale).double() - want).abs().max().item()
    assert got.shape == q.shape and got.dtype == torch.float32
    assert (got.double() - want).abs().max().item() <= 2 * sdpa_error + 1e-6


def test_each_row_is_independent_of_the_others():
    """A row's result is bit-identical alone or among other rows (beams of one window)."""
    q, k, v = _inputs(2, 8, 5, 1500, 64, seed=1)
    together = torch.ops.whispermedia.cross_attention(q, k, v, 0.125)
    for g in range(5):
        alone = torch.ops.whispermedia.cross_attention(q[:, :, g:g + 1].contiguous(), k, v, 0.125)
        assert torch.equal(alone, together[:, :, g:g + 1])


def test_strided_inputs_and_threads():
    q, k, v = _inputs(2, 6, 3, 100, 64, seed=2)
    want = torch.ops.whispermedia.cross_attention(q, k, v, 0.3)
    # the same values through transposed storage
    qt, kt, vt = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    assert not kt.is_contiguous()
    assert torch.equal(torch.ops.whispermedia.cross_attention(qt, kt, vt, 0.3), want)
    saved = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert torch.equal(torch.ops.whispermedia.cross_attention(q, k, v, 0.3), want)
    finally:
        torch.set_num_threads(saved)


def test_rejects_bad_arguments():
    q, k, v = _inputs(1, 2, 3, 10, 8)
    op = torch.ops.whispermedia.cross_attention
    with pytest.raises(RuntimeError, match="Float"):
        op(q.double(), k, v, 1.0)
    with pytest.raises(RuntimeError, match="same shape"):
        op(q, k, v[:, :, :5], 1.0)
    with pytest.raises(RuntimeError, match="disagree"):
        op(q[:, :1], k, v, 1.0)
    with pytest.raises(RuntimeError, match="at least one position"):
        op(q, k[:, :, :0], v[:, :, :0], 1.0)
    with pytest.raises(RuntimeError, match="4-D"):
        op(q[0], k, v, 1.0)


def test_opcheck():
    q, k, v = _inputs(1, 2, 3, 17, 8)
    torch.library.opcheck(torch.ops.whispermedia.cross_attention.default, (q, k, v, 0.5))


def test_torch_compile_fullgraph():
    q, k, v = _inputs(2, 6, 3, 100, 64, seed=4)
    compiled = torch.compile(lambda q, k, v: ops.cross_attention(q, k, v, 0.125), fullgraph=True, dynamic=False)
    assert torch.equal(compiled(q, k, v), torch.ops.whispermedia.cross_attention(q, k, v, 0.125))


def test_the_wrapper_dispatches_to_it_on_the_cpu_in_float32(monkeypatch):
    q, k, v = _inputs(1, 8, 5, 300, 64, seed=3)
    got = ops.cross_attention(q, k, v, 0.125)
    assert torch.equal(got, torch.ops.whispermedia.cross_attention(q, k, v, 0.125))
    sdpa = F.scaled_dot_product_attention(q, k, v)
    monkeypatch.setenv("WM_FORCE_REFERENCE", "1")
    assert torch.equal(ops.cross_attention(q, k, v, 0.125), sdpa)
    assert torch.equal(reference.cross_attention(q, k, v, 0.125), sdpa)
    assert ops.backend_info()["ops"]["cross_attention"] == {"cpu": "reference", "cuda": "not used"}
    monkeypatch.delenv("WM_FORCE_REFERENCE")
    half = ops.cross_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), 0.125)  # other dtypes: SDPA
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), sdpa, atol=0.05, rtol=0)
    many = torch.cat([q, q], dim=2)  # a prompt step's many rows: SDPA
    assert many.shape[2] > ops.CROSS_MAX_ROWS
    assert torch.equal(ops.cross_attention(many, k, v, 0.125), F.scaled_dot_product_attention(many, k, v))
