"""Each op is written four times (the C++ schema, the fake, the reference, the wrapper): their
parameter lists must agree, so that none of the copies drifts from the others."""

from __future__ import annotations

import inspect

import pytest
import torch

from whispermedia import ops
from whispermedia.ops import reference

OPS = ("log_mel_spectrogram", "log_mel_frames", "kv_attention", "linear_f16w", "linear_i8w", "cross_attention")
# op -> its wrapper in whispermedia.ops; ops.linear serves both compact-weight linears
WRAPPERS = {"log_mel_spectrogram": ops.log_mel_spectrogram, "log_mel_frames": ops.log_mel_frames,
            "kv_attention": ops.kv_attention, "linear_f16w": ops.linear, "linear_i8w": ops.linear,
            "cross_attention": ops.cross_attention}

needs_extension = pytest.mark.skipif(ops._C is None, reason="whispermedia._C is not built")


def _params(fn) -> list[tuple[str, object, object]]:
    """(name, default, annotation) of each parameter, annotations evaluated."""
    return [(p.name, p.default, p.annotation) for p in inspect.signature(fn, eval_str=True).parameters.values()]


def _fake(op: str):
    from whispermedia.ops import _fake

    return getattr(_fake, f"_{op}_fake")


def test_every_op_has_a_backend_entry_reference_and_wrapper():
    assert tuple(ops._BACKENDS) == OPS
    assert set(reference.__all__) == set(OPS)
    for op in OPS:
        assert callable(getattr(reference, op)) and op in WRAPPERS


@pytest.mark.parametrize("op", [op for op in OPS if WRAPPERS[op].__name__ == op])
def test_wrapper_and_reference_take_the_same_parameters(op):
    assert _params(WRAPPERS[op]) == _params(getattr(reference, op))


@pytest.mark.parametrize("op", ["linear_f16w", "linear_i8w"])
def test_linear_wrapper_covers_both_linears(op):
    wrapper = {name: (default, annotation) for name, default, annotation in _params(ops.linear)}
    for name, default, annotation in _params(getattr(reference, op)):
        assert name in wrapper
        if default is not inspect.Parameter.empty:  # optional in the op, optional in the wrapper
            assert wrapper[name][0] == default
        assert wrapper[name][1] in (annotation, annotation | None)


@needs_extension
@pytest.mark.parametrize("op", OPS)
def test_fake_and_reference_match_the_schema(op):
    schema = getattr(torch.ops.whispermedia, op).default._schema
    declared = [(a.name, a.default_value if a.has_default_value() else inspect.Parameter.empty)
                for a in schema.arguments]
    assert _params(_fake(op)) == _params(getattr(reference, op))
    assert [(name, default) for name, default, _ in _params(getattr(reference, op))] == declared
