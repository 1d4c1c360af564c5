"""Command implementations for :mod:`netshape.cli` (one module per command group)."""
