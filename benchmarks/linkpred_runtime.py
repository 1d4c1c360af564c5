"""Link-prediction runtime benchmark (the paper's Figure 2), via ``netshape bench``.

Run from the repository root::

    python benchmarks/linkpred_runtime.py            # full default sweep, ~10-15 min
    python benchmarks/linkpred_runtime.py --quick    # smoke test

Any ``netshape bench`` option is accepted. Without ``-o`` the results go to
``benchmarks/results/linkpred_runtime.{csv,md,png}`` and the plot is copied to
``docs/img/linkpred_runtime.png`` for the documentation. The markdown report
gets the project's performance targets (:mod:`linkpred_targets`), which are
also printed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _fingerprint import record
from linkpred_targets import targets_markdown, targets_text

from netshape import bench
from netshape._fs import atomic_write_text
from netshape.cli import main

ROOT = Path(__file__).resolve().parent.parent
#: the code whose speed the results describe (benchmarks/results/fingerprints.json)
MEASURED = ["benchmarks/linkpred_runtime.py", "netshape/linkpred", "netshape/bench",
            "netshape/generators/er.py", "netshape/_random.py", "netshape/_llvm.py"]


def _output(args: list[str]) -> Path:
    for flag in ("-o", "--output"):
        if flag in args:
            return Path(args[args.index(flag) + 1])
    return Path("netshape-bench")


def finish(out: Path, quick: bool) -> list[str]:
    """Add the targets to the report in ``out`` and return the lines to print.

    A ``--quick`` sweep times each configuration once on a tiny grid: its
    numbers are a smoke test, too noisy to judge a target by, so it gets no
    verdicts (and its report no targets section).
    """
    if quick:
        return ["targets: not judged in --quick mode (one repeat on a tiny grid is noise); "
                "run without --quick for verdicts"]
    rows = bench.read_csv(out / "linkpred_runtime.csv")
    atomic_write_text(out / "linkpred_runtime.md", bench.to_markdown(rows,
                                                                    targets_markdown(rows)))
    return targets_text(rows)


if __name__ == "__main__":
    args = sys.argv[1:]
    default_out = "-o" not in args and "--output" not in args
    if default_out:
        args += ["-o", str(ROOT / "benchmarks" / "results")]
    code = main(["bench", *args])
    if code == 0:
        for line in finish(_output(args), quick="--quick" in args):
            print("  " + line)
    png = ROOT / "benchmarks" / "results" / "linkpred_runtime.png"
    if default_out and "--quick" not in args:
        print("code fingerprint", record("linkpred_runtime", MEASURED)[:16])
    if code == 0 and default_out and "--quick" not in args and png.exists():
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, ROOT / "docs" / "img" / "linkpred_runtime.png")
    raise SystemExit(code)
