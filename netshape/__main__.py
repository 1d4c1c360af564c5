"""``python -m netshape`` — same as the ``netshape`` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
