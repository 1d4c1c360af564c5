"""The decoder's architecture as plain data: no torch, so configs load without it."""

from __future__ import annotations

import dataclasses

from .._validation import check_positive_int

__all__ = ["LMShape"]


@dataclasses.dataclass(frozen=True)
class LMShape:
    """Architecture of the decoder; ``n_kv_heads=None`` means ``n_heads`` (no GQA)."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None
    ffn: int = 344
    context: int = 128
    rope_theta: float = 10000.0

    def validated(self) -> LMShape:
        for name in ("d_model", "n_layers", "n_heads", "ffn", "context"):
            check_positive_int(getattr(self, name), name)
        kv = self.n_heads if self.n_kv_heads is None else check_positive_int(self.n_kv_heads,
                                                                           "n_kv_heads")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"d_model={self.d_model!r} must split into n_heads={self.n_heads!r} "
                             "heads of an even size (rotary embeddings turn channel pairs)")
        if self.n_heads % kv:
            raise ValueError(f"n_kv_heads={kv!r} must divide n_heads={self.n_heads!r}")
        return dataclasses.replace(self, n_kv_heads=kv)
