"""whispermedia::kv_attention: compiled kernels vs the reference, cache writes, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from whispermedia import ops
from whispermedia.ops import reference

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]),
]
D = 64  # every Whisper size uses 64-dimensional heads


def require_kernel(device: str) -> None:
    if ops.backend_info()["ops"]["kv_attention"][device] != "compiled":
        pytest.skip(f"no compiled kv_attention kernel for {device}")


def make_inputs(B, Tq, H, Tmax, seqlens, dtype=torch.float32, device="cpu", seed=0, head_dim=D):
    """q/k_new/v_new [B, Tq, H, D], caches [B, Tmax, H, D] full of stale values, int32 seqlens."""
    g = torch.Generator().manual_seed(seed)
    q, k_new, v_new = (torch.randn(B, Tq, H, head_dim, generator=g) for _ in range(3))
    k_cache, v_cache = (torch.randn(B, Tmax, H, head_dim, generator=g) for _ in range(2))
    lens = torch.tensor(seqlens, dtype=torch.int32)
    return [t.to(device=device, dtype=dtype) for t in (q, k_cache, v_cache, k_new, v_new)] + [lens.to(device)]


def attention_lowp(q, k_cache, v_cache, seqlens, scale):
    """The reference's attention without the fp32 upcast, i.e. what plain PyTorch in the
    low-precision dtype gets: the yardstick of the low-precision tolerance."""
    B, Tq, H, _ = q.shape
    rows = seqlens.long()[:, None] + torch.arange(Tq, device=q.device)
    scores = torch.einsum("bihd,bjhd->bhij", q, k_cache) * scale
    visible = torch.arange(k_cache.shape[1], device=q.device)[None, None, :] <= rows[:, :, None]
    probs = torch.softmax(scores.masked_fill(~visible[:, None], float("-inf")), dim=-1)
    return torch.einsum("bhij,bjhd->bihd", probs, v_cache)


def seqlens_for(B, Tq, Tmax):
    # Different per row, including an empty cache and a cache that ends exactly full.
    room = Tmax - Tq
    return [room - (b * (room // max(B - 1, 1))) if B > 1 else room for b in range(B)][::-1]


# (B, Tq, H, Tmax): contexts 1, 3, 224, 448; beams/batch 1..5; heads 6 and 8; prompt and step.
CASES = [
    (1, 1, 6, 1),
    (2, 1, 8, 3),
    (3, 3, 6, 3),
    (5, 1, 8, 224),
    (4, 17, 6, 224),
    (5, 1, 6, 448),
    (2, 1, 8, 448),
    (1, 448, 6, 448),
    (3, 40, 8, 448),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("B,Tq,H,Tmax", CASES, ids=lambda v: str(v))
def test_fp32_matches_reference(device, B, Tq, H, Tmax):
    require_kernel(device)
    lens = seqlens_for(B, Tq, Tmax)
    q, kc, vc, kn, vn, sl = make_inputs(B, Tq, H, Tmax, lens, device=device)
    kc_ref, vc_ref = kc.clone(), vc.clone()
    want = reference.kv_attention(q, kc_ref, vc_ref, kn, vn, sl, D**-0.5)
    got = torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, sl, D**-0.5)
    assert got.shape == q.shape and got.dtype == q.dtype and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.equal(kc, kc_ref) and torch.equal(vc, vc_ref)
    assert sl.tolist() == lens  # the caller advances seqlens, not the op


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("head_dim", [1, 20, 72, 200])
def test_other_head_dims(device, head_dim):
    """Non-Whisper head sizes take the kernels' tail paths (not a multiple of the SIMD width
    or of the CUDA block)."""
    require_kernel(device)
    B, Tq, H, Tmax = 2, 3, 3, 150
    q, kc, vc, kn, vn, sl = make_inputs(B, Tq, H, Tmax, [0, 141], device=device, seed=4, head_dim=head_dim)
    kc_ref, vc_ref = kc.clone(), vc.clone()
    want = reference.kv_attention(q, kc_ref, vc_ref, kn, vn, sl, head_dim**-0.5)
    got = torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, sl, head_dim**-0.5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.equal(kc, kc_ref) and torch.equal(vc, vc_ref)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("B,Tq,H,Tmax", [(5, 1, 8, 448), (3, 3, 6, 3), (2, 24, 6, 224), (1, 1, 8, 1)],
                         ids=lambda v: str(v))
def test_low_precision_within_twice_pytorch_error(device, dtype, B, Tq, H, Tmax):
    require_kernel(device)
    lens = seqlens_for(B, Tq, Tmax)
    q, kc, vc, kn, vn, sl = make_inputs(B, Tq, H, Tmax, lens, dtype=dtype, device=device, seed=1)
    scale = D**-0.5
    # Same low-precision inputs for all three; the caches after the append are shared too.
    kc_ref, vc_ref = kc.clone(), vc.clone()
    ref_fp32 = reference.kv_attention(q.float(), kc_ref.float(), vc_ref.float(), kn.float(), vn.float(), sl, scale)
    reference.kv_attention(q, kc_ref, vc_ref, kn, vn, sl, scale)  # the append, in dtype
    ref_lowp = attention_lowp(q, kc_ref, vc_ref, sl, scale)
    got = torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, sl, scale)
    assert got.dtype == dtype
    op_err = (got.float() - ref_fp32).abs().max().item()
    torch_err = (ref_lowp.float() - ref_fp32).abs().max().item()
    assert op_err <= 2 * torch_err + 1e-5, f"op error {op_err:.3g} vs PyTorch {dtype} error {torch_err:.3g}"
    assert torch.equal(kc, kc_ref) and torch.equal(vc, vc_ref)


@pytest.mark.parametrize("device", DEVICES)
def test_only_the_appended_rows_change(device):
    require_kernel(device)
    B, Tq, H, Tmax = 4, 3, 6, 32
    lens = [0, 5, 29, 12]
    q, kc, vc, kn, vn, sl = make_inputs(B, Tq, H, Tmax, lens, device=device, seed=2)
    k_before, v_before = kc.clone(), vc.clone()
    torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, sl, 0.125)
    for b, n in enumerate(lens):
        written = torch.zeros(Tmax, dtype=torch.bool)
        written[n:n + Tq] = True
        assert torch.equal(kc[b, n:n + Tq], kn[b]) and torch.equal(vc[b, n:n + Tq], vn[b])
        assert torch.equal(kc[b, ~written], k_before[b, ~written])
        assert torch.equal(vc[b, ~written], v_before[b, ~written])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", ["reference", "kernel"])
def test_unwritten_rows_may_hold_any_bits(device, impl):
    """Rows past seqlens[b] + Tq are never used: a cache from torch.empty (the slot pool's) with
    NaN and infinities there gives the output of a clean one, bit for bit."""
    if impl == "kernel":
        require_kernel(device)
    op = reference.kv_attention if impl == "reference" else torch.ops.whispermedia.kv_attention
    B, Tq, H, Tmax = 3, 2, 6, 40
    lens = [0, 9, 38]
    q, kc, vc, kn, vn, sl = make_inputs(B, Tq, H, Tmax, lens, device=device, seed=5)
    dirty_k, dirty_v = kc.clone(), vc.clone()
    for b, n in enumerate(lens):
        dirty_k[b, n + Tq:] = float("nan")
        dirty_v[b, n + Tq:] = float("inf") if b % 2 else float("nan")
    want = op(q, kc, vc, kn, vn, sl, D**-0.5)
    got = op(q, dirty_k, dirty_v, kn, vn, sl, D**-0.5)
    assert torch.isfinite(got).all()
    assert torch.equal(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_strided_inputs_and_cache_views(device):
    """Caches that are views of a bigger buffer (written through the view), and q/k/v that
    are slices of a fused qkv projection."""
    require_kernel(device)
    B, Tq, H, Tmax = 3, 2, 6, 20
    lens = [0, 7, 18]
    g = torch.Generator().manual_seed(3)
    qkv = torch.randn(B, Tq, 3, H, D, generator=g).to(device)
    q, kn, vn = qkv.unbind(2)
    k_buf, v_buf = (torch.randn(B, Tmax + 5, H, D, generator=g).to(device) for _ in range(2))
    kc, vc = k_buf[:, 2:Tmax + 2], v_buf[:, 2:Tmax + 2]
    sl = torch.tensor(lens, dtype=torch.int32, device=device)
    kc_ref, vc_ref = kc.clone(), vc.clone()
    want = reference.kv_attention(q, kc_ref, vc_ref, kn, vn, sl, D**-0.5)
    k_buf_before = k_buf.clone()
    got = torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, sl, D**-0.5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.equal(kc, kc_ref) and torch.equal(vc, vc_ref)
    outside = torch.ones(Tmax + 5, dtype=torch.bool)
    outside[2:Tmax + 2] = False
    assert torch.equal(k_buf[:, outside], k_buf_before[:, outside])


def test_overflow_error_cpu():
    require_kernel("cpu")
    q, kc, vc, kn, vn, _ = make_inputs(2, 3, 6, 8, [0, 0])
    before = kc.clone()
    with pytest.raises(RuntimeError, match=r"cache overflow in batch row 1: seqlens\[1\] = 6 plus Tq = 3 new rows "
                                           r"exceeds the cache length Tmax = 8"):
        torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, torch.tensor([5, 6], dtype=torch.int32), 1.0)
    assert torch.equal(kc, before)
    with pytest.raises(RuntimeError, match="cache overflow in batch row 1"):
        reference.kv_attention(q, kc, vc, kn, vn, torch.tensor([5, 6], dtype=torch.int32), 1.0)
    with pytest.raises(RuntimeError, match="seqlens must be Int"):
        torch.ops.whispermedia.kv_attention(q, kc, vc, kn, vn, torch.tensor([0, 0]), 1.0)
    with pytest.raises(RuntimeError, match=r"k_new must have shape \(B, Tq, H, D\)"):
        torch.ops.whispermedia.kv_attention(q, kc, vc, kn[:, :2], vn, torch.tensor([0, 0], dtype=torch.int32), 1.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_overflow_error_cuda():
    """On CUDA the check is a device-side assertion (no host sync per decode step), which
    poisons the CUDA context: run it in a child process."""
    require_kernel("cuda")
    code = textwrap.dedent("""
        import torch, whispermedia.ops
        q = torch.randn(2, 3, 6, 64, device="cuda")
        kc, vc = torch.zeros(2, 8, 6, 64, device="cuda"), torch.zeros(2, 8, 6, 64, device="cuda")
        lens = torch.tensor([5, 6], dtype=torch.int32, device="cuda")
        torch.ops.whispermedia.kv_attention(q, kc, vc, q, q, lens, 1.0)
        torch.cuda.synchronize()
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "cache overflow in batch row 1" in proc.stdout + proc.stderr


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    require_kernel(device)
    for dtype, (B, Tq, H, Tmax, lens) in ((torch.float32, (2, 1, 6, 10, [3, 9])),
                                          (torch.float16, (1, 4, 8, 12, [2]))):
        args = make_inputs(B, Tq, H, Tmax, lens, dtype=dtype, device=device)
        torch.library.opcheck(torch.ops.whispermedia.kv_attention.default, (*args, 0.125))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    """A decode step as a compiled graph: the in-place cache writes survive functionalization."""
    require_kernel(device)

    def step(q, k_cache, v_cache, k_new, v_new, seqlens):
        return ops.kv_attention(q, k_cache, v_cache, k_new, v_new, seqlens, D**-0.5)

    q, kc, vc, kn, vn, sl = make_inputs(3, 1, 6, 24, [0, 11, 23], device=device)
    kc_eager, vc_eager = kc.clone(), vc.clone()
    want = step(q, kc_eager, vc_eager, kn, vn, sl)
    got = torch.compile(step, fullgraph=True, dynamic=False)(q, kc, vc, kn, vn, sl)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert torch.equal(kc, kc_eager) and torch.equal(vc, vc_eager)


def test_wrapper_uses_reference_when_forced(monkeypatch):
    q, kc, vc, kn, vn, sl = make_inputs(2, 2, 6, 9, [1, 7])
    kc2, vc2 = kc.clone(), vc.clone()
    want = reference.kv_attention(q, kc2, vc2, kn, vn, sl, 0.125)
    monkeypatch.setenv("WM_FORCE_REFERENCE", "1")
    assert ops.backend_info()["forced_reference"] is True
    assert ops.backend_info()["ops"]["kv_attention"]["cpu"] == "reference"
    torch.testing.assert_close(ops.kv_attention(q, kc, vc, kn, vn, sl, 0.125), want, rtol=0, atol=0)
    assert torch.equal(kc, kc2)
