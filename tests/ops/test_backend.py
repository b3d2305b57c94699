"""whispermedia.ops backend selection: backend_info() and the fallback without _C."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from whispermedia import ops


def test_backend_info_shape():
    info = ops.backend_info()
    assert set(info) == {"extension_loaded", "extension_error", "extension_path", "cuda_built", "forced_reference",
                         "ops"}
    cpu_only = {"linear_f16w", "linear_i8w", "cross_attention"}
    assert set(info["ops"]) == {"log_mel_spectrogram", "kv_attention"} | cpu_only
    for op, per_device in info["ops"].items():
        assert per_device["cpu"] in ("compiled", "reference")
        if op in cpu_only:  # the decode step's CPU kernels: a GPU runs float16 GEMMs and SDPA
            assert per_device["cuda"] == "not used"
        else:
            assert per_device["cuda"] in ("compiled", "reference", "unavailable")
    assert (info["extension_error"] is None) == info["extension_loaded"]
    if info["extension_loaded"]:
        assert info["extension_path"].endswith((".so", ".pyd"))
    json.dumps(info)  # wm doctor prints it as JSON


def test_without_the_extension_everything_falls_back():
    """A fresh interpreter where ``whispermedia._C`` cannot be imported (as in a source
    checkout that was never built): the ops still work, through the reference, warn once,
    and backend_info says why."""
    code = textwrap.dedent("""
        import json, sys, warnings
        sys.modules["whispermedia._C"] = None  # makes `from whispermedia import _C` raise ImportError
        import torch
        from whispermedia import ops
        from whispermedia.features import log_mel_spectrogram
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mel = log_mel_spectrogram(torch.randn(4000) * 0.1)
            log_mel_spectrogram(torch.randn(4000) * 0.1)
            q = torch.randn(1, 1, 2, 8)
            kc = torch.zeros(1, 4, 2, 8)
            out = ops.kv_attention(q, kc, kc.clone(), q, q, torch.zeros(1, dtype=torch.int32), 0.5)
        print(json.dumps({"info": ops.backend_info(), "mel": list(mel.shape), "out": list(out.shape),
                          "kv_row_written": bool(torch.equal(kc[0, 0], q[0, 0])),
                          "warnings": [str(w.message) for w in caught]}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    info = result["info"]
    assert info["extension_loaded"] is False and "whispermedia._C" in info["extension_error"]
    assert info["extension_path"] is None and info["cuda_built"] is False
    assert info["ops"]["log_mel_spectrogram"]["cpu"] == "reference"
    assert info["ops"]["kv_attention"]["cpu"] == "reference"
    assert result["mel"] == [80, 25] and result["out"] == [1, 1, 2, 8] and result["kv_row_written"]
    assert len(result["warnings"]) == 2  # once per op, not per call
    assert all("pure-torch reference" in w for w in result["warnings"])
