"""Former home of the atomic writes, now :mod:`netshape._fs`; kept so older imports work."""

from ._fs import atomic_path, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]
