"""Comparisons of two training runs shared by the MLP and LM runner tests (timings aside)."""

from __future__ import annotations

import torch


def strip_timings(rows: list[dict]) -> list[dict]:
    """Metric rows without their wall-clock columns (any key with ``seconds`` in it)."""
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]


def assert_same_state(a, b) -> None:
    """Exact equality of nested dicts / lists of tensors and plain values (timings aside)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            if "seconds" not in str(k):  # wall-clock timings differ between any two runs
                assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_state(x, y)
    else:
        assert a == b
