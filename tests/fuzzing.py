"""The call classifier shared by the numpy and torch fuzz tests."""

from __future__ import annotations

from collections import Counter

#: the error types the public API documents for bad arguments
DOCUMENTED = (ValueError, TypeError)


def assert_named(exc: BaseException, name: str, where: str) -> None:
    assert isinstance(exc, DOCUMENTED), f"{where}: {type(exc).__name__}: {exc}"
    assert name in str(exc), f"{where}: message does not name {name!r}: {exc}"


def fuzz_call(tally: Counter, where: str, arg: str, fn, *args, check=None, **kw):
    """Run one fuzz call; the result, or None when a documented error naming ``arg`` was raised.

    ``tally`` counts the refused and valid calls per ``where``.
    """
    try:
        out = fn(*args, **kw)
    except BaseException as exc:  # noqa: BLE001 - classified below
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        tally[f"{where}: refused"] += 1
        assert_named(exc, arg, f"{where}({arg}=...)")
        return None
    tally[f"{where}: valid"] += 1
    if check is not None:
        check(out)
    return out
