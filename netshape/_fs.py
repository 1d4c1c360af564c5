"""Files: atomic writes and output-path checks.

An atomic write goes to a temporary file beside the target, then is renamed
over it: a crash or Ctrl-C never leaves a half-written file under the final
name. The checks run before any work, so a bad output path fails at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it over ``path`` on success.

    ``suffix`` defaults to the target's suffix (some writers, e.g.
    ``numpy.savez`` or matplotlib, pick the format from it).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    suffix = target.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _nearest_existing(p: Path) -> Path:
    """``p`` or its closest ancestor that exists (``.`` for a relative path with none)."""
    for candidate in (p, *p.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_writable_dir(path: str | os.PathLike, name: str = "--output",
                       create: bool = True) -> Path:
    """Check files can be written in directory ``path``; raise otherwise.

    With ``create=True`` the directory is created if needed. With
    ``create=False`` nothing is created: the nearest existing ancestor must be
    a writable directory (a probe file is made there and removed), so that a
    command can check its outputs before it writes anything.
    """
    p = Path(path)
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionError(f"{name}={str(path)!r} is not a writable directory: "
                                  f"{exc}") from exc
        probe_dir = p
    else:
        probe_dir = _nearest_existing(p)
        if not probe_dir.is_dir():
            raise NotADirectoryError(f"{name}={str(path)!r} is not a writable directory: "
                                     f"{str(probe_dir)!r} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".netshape-probe-"):
            pass
    except OSError as exc:
        raise PermissionError(f"{name}={str(path)!r} is not a writable directory: {exc}") from exc
    return p


def check_writable_file(path: str | os.PathLike, name: str = "--output",
                        suffixes: tuple[str, ...] | None = None,
                        create: bool = True) -> Path:
    """Check ``path`` can be written as a file; raise otherwise.

    ``suffixes`` (e.g. ``(".npz",)``) are the file endings allowed: the format
    a command writes, so that ``-o scores.csv`` is refused rather than given
    a zip. The parent directory is created when ``create`` is true; with
    ``create=False`` nothing is written (see :func:`check_writable_dir`).

    >>> check_writable_file("out.png", "--output", suffixes=(".npz",))
    Traceback (most recent call last):
    ...
    ValueError: --output='out.png' must end in .npz (the format written), not '.png'
    """
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{name}={str(path)!r} is a directory; give a file name")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise ValueError(f"{name}={str(path)!r} must end in {' or '.join(suffixes)} "
                         f"(the format written), not {p.suffix or 'no suffix'!r}")
    check_writable_dir(p.parent if str(p.parent) else ".", name, create=create)
    return p


def csv_cell(v: Any) -> Any:
    """A value as a CSV cell: floats to 6 significant digits, None/NaN/inf as empty."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    return v


def csv_text(rows: Iterable[dict], columns: Sequence[str],
             cell: Callable[[Any], Any] = csv_cell) -> str:
    """CSV text with a header of ``columns`` and one line per row (missing keys empty).

    >>> print(csv_text([{"a": 1, "b": 0.5}, {"a": 2}], ["a", "b"]), end="")
    a,b
    1,0.5
    2,
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([cell(r.get(c)) for c in columns])
    return buf.getvalue()


def number(text: str) -> Any:
    """A CSV cell parsed back: int, then float, else the text; empty -> NaN.

    >>> number("3"), number("0.25"), number(""), number("ok")
    (3, 0.25, nan, 'ok')
    """
    if text == "":
        return math.nan
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: str | os.PathLike,
             convert: Callable[[str, str], Any] | None = None) -> list[dict]:
    """Rows of a CSV file as dicts, each cell through ``convert(column, text)``
    (default :func:`number`); an unreadable file raises ValueError naming it."""
    convert = convert or (lambda _, text: number(text))
    try:
        with open(path, newline="") as fh:
            return [{k: convert(k, v or "") for k, v in raw.items()} for raw in csv.DictReader(fh)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{str(path)!r} is not a readable CSV file: {exc}") from exc
