r"""Byte-level text corpora for the language-model runner, split by file.

The default corpus is the running interpreter's standard-library source tree
(``sysconfig.get_paths()["stdlib"]``, every ``*.py`` file outside
``site-packages``/``dist-packages``): present wherever Python is, no download.
``data_dir`` takes any directory of text files instead (every regular file,
hidden ones and files holding a NUL byte, i.e. binary files, skipped).

Files are sorted by relative path and assigned to validation when the first
eight bytes of the SHA-256 of that path, read as a fraction of :math:`2^{64}`,
fall below ``val_fraction``: a pure function of the path, so the split is the
same on every machine, order of listing, and run. Each side is the
concatenation of its files' bytes (a newline between files); tokens are the
bytes, 256 symbols.

Examples
--------
>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for i in range(20):
...     _ = (d / f"f{i:02d}.txt").write_text("hello world " * 40)
>>> c = load_corpus(d, val_fraction=0.2, context=32)
>>> c.kind, len(c.train_files) + len(c.validation_files)
('directory', 20)
>>> c.split_record()["validation_files"] == c.validation_files
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sysconfig
from pathlib import Path

import numpy as np

__all__ = ["Corpus", "default_corpus_dir", "is_validation", "load_corpus"]

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}


def default_corpus_dir() -> Path:
    """The running interpreter's standard-library directory."""
    return Path(sysconfig.get_paths()["stdlib"])


def is_validation(relpath: str, val_fraction: float) -> bool:
    """Whether the file at ``relpath`` (POSIX separators) belongs to the validation side.

    >>> is_validation("a/b.py", 0.0), is_validation("a/b.py", 1.0)
    (False, True)
    """
    h = int.from_bytes(hashlib.sha256(relpath.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < val_fraction


@dataclasses.dataclass
class Corpus:
    """Token arrays (``uint8``) of the two sides and the split that made them."""

    kind: str
    source: str
    val_fraction: float
    train_files: list[str]
    validation_files: list[str]
    train: np.ndarray
    validation: np.ndarray
    sha256: str

    def split_record(self) -> dict:
        """What ``split.json`` in the run directory holds."""
        return {"kind": self.kind, "source": self.source, "val_fraction": self.val_fraction,
                "train_bytes": int(self.train.size),
                "validation_bytes": int(self.validation.size), "sha256": self.sha256,
                "train_files": list(self.train_files),
                "validation_files": list(self.validation_files)}


def _list_files(root: Path, kind: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and (kind != "stdlib" or d not in _SKIP_DIRS))
        for f in filenames:
            if f.startswith(".") or (kind == "stdlib" and not f.endswith(".py")):
                continue
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                out.append(p.relative_to(root).as_posix())
    return sorted(out)


def load_corpus(data_dir: str | os.PathLike | None = None, *, val_fraction: float = 0.1,
                context: int = 128) -> Corpus:
    """Read a corpus and split it; raise before anything is written when it cannot serve.

    Parameters
    ----------
    data_dir : path, optional
        A directory of text files; default the standard-library tree.
    val_fraction : float in (0, 1)
        Expected share of files on the validation side.
    context : int
        Tokens per training sequence; each side needs at least ``context + 1`` bytes.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        ``data_dir`` does not exist or is not a directory.
    ValueError
        No text files, or a side too small for ``context``.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} is outside the allowed range (0, 1)")
    kind = "stdlib" if data_dir is None else "directory"
    root = default_corpus_dir() if data_dir is None else Path(data_dir)
    label = "the standard library" if data_dir is None else f"data_dir={str(data_dir)!r}"
    if not root.exists():
        raise FileNotFoundError(f"{label} ({str(root)!r}) does not exist; pass a directory "
                                "of text files")
    if not root.is_dir():
        raise NotADirectoryError(f"{label} is not a directory; pass a directory of text files")
    sides: dict[bool, tuple[list[str], list[bytes]]] = {False: ([], []), True: ([], [])}
    digest = hashlib.sha256()
    for rel in _list_files(root, kind):
        try:
            data = (root / rel).read_bytes()
        except OSError:  # unreadable files are skipped like binary ones
            continue
        if not data or b"\0" in data:
            continue
        names, blobs = sides[is_validation(rel, float(val_fraction))]
        names.append(rel)
        blobs.append(data)
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    if not sides[False][0] and not sides[True][0]:
        raise ValueError(f"{label} holds no text files (hidden and binary files are skipped)")
    arrays = {}
    for is_val, (names, blobs) in sides.items():
        side = "validation" if is_val else "train"
        arr = np.frombuffer(b"\n".join(blobs), dtype=np.uint8)
        if arr.size < int(context) + 1:
            raise ValueError(
                f"{label}: the {side} side has {arr.size} bytes from {len(names)} file(s), "
                f"fewer than context + 1 = {int(context) + 1}; add text files, lower context, "
                f"or change val_fraction (now {val_fraction})")
        arrays[side] = arr
    return Corpus(kind=kind, source=str(root), val_fraction=float(val_fraction),
                  train_files=sides[False][0], validation_files=sides[True][0],
                  train=arrays["train"], validation=arrays["validation"],
                  sha256=digest.hexdigest())
