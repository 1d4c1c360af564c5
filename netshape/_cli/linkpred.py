"""``netshape predict`` (score the missing links of a topology) and ``netshape bench``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ._common import add_rng, check_output_dir, check_output_file, make_parent


def _predictors() -> tuple[str, ...]:
    from ..linkpred import available

    return available()


def _paths() -> tuple[str, ...]:
    """Every predictor's computation routes (``method=`` values), "auto" first."""
    from ..linkpred import methods

    return tuple(dict.fromkeys(m for name in _predictors() for m in methods(name)))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="score every missing link of a topology (.npz)",
        description=(
            "Read a topology written by netshape.io.save_topology (one layer, or a network of "
            "named layers), score every missing link with a link predictor and write the "
            "scores to an .npz file (float32 array 'scores' of shape (n_in, n_out), or "
            "'scores.<layer>' per layer; rows are inputs, columns outputs). With --top K, "
            "also write the K best candidates as an edge-list CSV beside it."))
    p.add_argument("topology", metavar="A.npz", help="topology file (netshape .npz)")
    p.add_argument("--predictor", default=None, choices=_predictors(),
                   help="link predictor (default ch2_l3n)")
    p.add_argument("--method", dest="predictor_alias", default=None, choices=_predictors(),
                   help=argparse.SUPPRESS)  # deprecated spelling of --predictor
    p.add_argument("--path", default="auto", choices=_paths(),
                   help="computation route, the predictor's method= (default auto): dense or "
                        "sparse for ch2_l3n/ch3_l3n, numba (the compiled walk) or numpy for "
                        "ch3_l3p/ch2_l3p")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="score only this layer of a network file (default: every layer)")
    p.add_argument("-o", "--output", required=True, metavar="S.npz", help="scores file")
    p.add_argument("--top", type=int, default=None, metavar="K",
                   help="also write the K highest-scoring missing links to <output>_top<K>.csv")
    add_rng(p)
    p.set_defaults(func=run_predict)

    b = subparsers.add_parser(
        "bench", help="link-prediction runtime sweep (Figure 2 of the paper)",
        description=(
            "Time link predictors over sizes x densities x predictors on random square layers, "
            "with warm-up, median of repeats, a per-configuration timeout and, in the same "
            "run, one n x n float32 matrix product as the hardware reference. Writes "
            "linkpred_runtime.csv (tidy), .md (targets and tables) and .png (runtime plot)."))
    b.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                   help="layer sizes n (n x n; default 256 512 1024 2048 4096)")
    b.add_argument("--densities", type=float, nargs="+", default=None, metavar="P",
                   help="densities, each in (0, 1] (default 0.001 0.003 0.01 0.03 0.05 0.1 0.3)")
    b.add_argument("--predictors", nargs="+", default=None, metavar="NAME[:PATH]",
                   help="e.g. ch2_l3n:dense ch2_l3n:sparse ch2_l3n:auto ch3_l3p "
                        "ch3_l3p:numpy l3_paths (default: the first four)")
    b.add_argument("--methods", dest="predictors_alias", nargs="+", default=None,
                   help=argparse.SUPPRESS)  # deprecated spelling of --predictors
    b.add_argument("--backend", default="numpy",
                   choices=("numpy", "scipy", "torch", "torch-cuda", "cupy"),
                   help="input type given to the predictor (default numpy)")
    b.add_argument("--repeats", type=int, default=None,
                   help="timed calls per configuration, at least (default 5; 1 with --quick)")
    b.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    b.add_argument("--timeout", type=float, default=None,
                   help="seconds one call may take before the configuration is a timeout "
                        "(default 30; 60 with --quick)")
    b.add_argument("--quick", action="store_true",
                   help="tiny grid (sizes 64 128, densities 0.02 0.2, 1 repeat): a smoke test "
                        "that reports times only (one repeat is too noisy to judge by)")
    b.add_argument("--no-plot", action="store_true", help="skip the PNG")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("-o", "--output", default="netshape-bench", metavar="DIR",
                   help="output directory (default ./netshape-bench)")
    add_rng(b)
    b.set_defaults(func=run_bench)


def _top_rows(S, k: int, layer: str | None):
    """``(layer, input, output, score, rank)`` of the ``k`` best positive scores."""
    import numpy as np

    flat = np.asarray(S).ravel()
    pos = np.flatnonzero(flat > 0)
    # best score first; ties by input then output, so the list is reproducible
    order = pos[np.lexsort((pos, -flat[pos]))][:k]
    rows = []
    for rank, idx in enumerate(order, 1):
        u, j = divmod(int(idx), S.shape[1])
        rows.append((layer or "", u, j, float(flat[idx]), rank))
    return rows


def _predictor_of(args: argparse.Namespace) -> str:
    """``--predictor``, or the deprecated ``--method`` (with a note on stderr)."""
    if args.predictor_alias is not None:
        if args.predictor is not None and args.predictor != args.predictor_alias:
            raise ValueError(f"--method={args.predictor_alias!r} (deprecated) and "
                             f"--predictor={args.predictor!r} disagree; give --predictor only")
        print("netshape predict: --method is deprecated; use --predictor", file=sys.stderr)
        return args.predictor_alias
    return args.predictor or "ch2_l3n"


def run_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .._fs import atomic_path, atomic_write_text
    from ..io import load_topology
    from ..linkpred import methods, predict

    if args.top is not None and args.top < 1:
        raise ValueError(f"--top={args.top} must be a positive integer")
    predictor = _predictor_of(args)
    if args.path not in methods(predictor):
        raise ValueError(f"--path={args.path!r} does not apply to {predictor}; its paths: "
                         f"{', '.join(methods(predictor))}")
    out = check_output_file(args.output, "--output", (".npz",))
    topo = load_topology(args.topology)
    layers = topo if isinstance(topo, dict) else {None: topo}
    if args.layer is not None:
        if not isinstance(topo, dict) or args.layer not in topo:
            have = ", ".join(map(repr, topo)) if isinstance(topo, dict) else "none (one layer)"
            raise ValueError(f"--layer={args.layer!r} is not in {args.topology}; layers: {have}")
        layers = {args.layer: topo[args.layer]}
    arrays = {"method": np.asarray(predictor),
              "orientation": np.asarray("(n_in, n_out): rows inputs, columns outputs")}
    top = []
    t0 = time.perf_counter()
    for name, A in layers.items():
        S = predict(A, predictor, method=args.path, rng=args.rng)
        S = S.toarray() if hasattr(S, "toarray") else np.asarray(S)
        arrays["scores" if name is None else f"scores.{name}"] = S.astype(np.float32)
        if args.top:
            top += _top_rows(S, args.top, name)
        n_pos = int((S > 0).sum())
        print(f"{name or 'layer'}: {S.shape[0]} x {S.shape[1]}, {A.nnz} links, "
              f"{n_pos} candidate(s) with a positive score, max {float(S.max()):.4g}")
    elapsed = time.perf_counter() - t0
    with atomic_path(make_parent(out)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    print(f"{predictor}: {elapsed:.3g} s; scores: {out}")
    if args.top:
        top_path = out.with_name(f"{out.stem}_top{args.top}.csv")
        lines = ["layer,input,output,score,rank"]
        lines += [f"{ly},{u},{j},{s:.9g},{r}" for ly, u, j, s, r in top]
        atomic_write_text(top_path, "\n".join(lines) + "\n")
        short = [n for n in layers if sum(1 for t in top if t[0] == (n or "")) < args.top]
        note = f" (fewer than {args.top} positive scores in {len(short)} layer(s))" if short else ""
        print(f"top {args.top}: {top_path}{note}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from .. import bench

    grid = dict(sizes=bench.DEFAULT_SIZES, densities=bench.DEFAULT_DENSITIES, repeats=5,
                timeout=30.0)
    if args.quick:
        grid.update(bench.QUICK)
    # what the user gives wins over --quick's grid (and is checked like any other value)
    grid.update({k: getattr(args, k) for k in ("sizes", "densities", "repeats", "timeout")
                 if getattr(args, k) is not None})
    if args.predictors_alias is not None:
        print("netshape bench: --methods is deprecated; use --predictors", file=sys.stderr)
    predictors = args.predictors or args.predictors_alias or bench.DEFAULT_PREDICTORS
    # every argument and the output folder are checked before the folder is created
    bench.check_arguments(predictors=predictors, backend=args.backend, warmup=args.warmup,
                          **grid)
    outdir = check_output_dir(args.output, "--output")
    kept: list[dict] = []

    def keep(rows: list[dict]) -> None:
        # each finished configuration is saved at once (atomically): Ctrl-C keeps them
        bench.write_results(rows, outdir, plot=False)
        kept[:] = rows

    t0 = time.perf_counter()
    try:
        rows = bench.run(predictors=predictors, backend=args.backend, warmup=args.warmup,
                         rng=args.rng, progress=not args.no_progress, on_config=keep, **grid)
    except KeyboardInterrupt:
        kept_txt = (f"kept {len(kept)} measured configuration(s) in "
                    f"{outdir / 'linkpred_runtime.csv'}" if kept else "nothing measured yet")
        print(f"netshape bench: interrupted; {kept_txt}; run the command again (with fewer "
              f"--sizes/--densities/--predictors) to measure the rest", file=sys.stderr)
        return 130
    paths = bench.write_results(rows, outdir, plot=not args.no_plot)
    counts = {s: sum(1 for r in rows if r["status"].split(":")[0] == s)
              for s in ("ok", "timeout", "skipped", "error")}
    print(f"{len(rows)} configurations in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if args.quick:
        print("quick mode: times from one repeat, a smoke test; judge nothing by them")
    for kind, path in paths.items():
        print(f"{kind}: {Path(path)}")
    return 0
