"""Files: atomic writes and output-path checks.

An atomic write goes to a temporary file beside the target, then is renamed
over it: a crash or Ctrl-C never leaves a half-written file under the final
name. The checks run before any work, so a bad output path fails at once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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


def check_writable_dir(path: str | os.PathLike, name: str = "--output") -> Path:
    """Create ``path`` if needed and check files can be written there; raise otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".netshape-probe-"):
            pass
    except OSError as exc:
        raise PermissionError(f"{name}={str(path)!r} is not a writable directory: {exc}") from exc
    return p


def check_writable_file(path: str | os.PathLike, name: str = "--output") -> Path:
    """Check the parent directory of ``path`` exists (created if needed) and is writable."""
    p = Path(path)
    check_writable_dir(p.parent if str(p.parent) else ".", name)
    return p
