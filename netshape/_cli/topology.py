"""``netshape generate | plot | info``: make, draw and describe layer topologies."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..generators import available as _generators
from ._common import IMAGE_SUFFIXES, add_rng, check_output_file, make_parent

MODELS = _generators()
#: options that only some models take (argparse default None means "not given")
_ONLY = {"r": ("brf",), "degrees": ("brf",), "beta": ("bsw",), "gamma": ("bsf",),
         "equal_partition": ("bsf",), "resort": ("bsf",), "data": ("csti",)}


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate", help="generate a layer topology (.npz) and optionally its plot",
        description="Generate a sparse layer topology: a boolean biadjacency (n_in, n_out), "
                    "rows inputs, columns outputs (a torch mask is A.T), saved as .npz.")
    g.add_argument("model", choices=MODELS, help="topology model")
    g.add_argument("--n-in", type=int, help="input neurons (csti: taken from --data)")
    g.add_argument("--n-out", type=int, required=True, help="output neurons")
    g.add_argument("--density", type=float, required=True, help="fraction of links, in (0, 1]")
    g.add_argument("--r", type=float, help="brf: spatial randomness in [0, 1] (default 0)")
    g.add_argument("--degrees", choices=("fixed", "uniform"),
                   help="brf: output degree distribution (default fixed)")
    g.add_argument("--beta", type=float, help="bsw: rewiring probability in [0, 1] (default 0)")
    g.add_argument("--gamma", type=float, help="bsf: power-law exponent > 2 (default 2.76)")
    g.add_argument("--equal-partition", action="store_true", default=None,
                   help="bsf: equalise the input degrees")
    g.add_argument("--resort", choices=("rigid", "soft"),
                   help="bsf: order neurons by degree so hubs line up with the next layer")
    g.add_argument("--data", metavar="X.npy",
                   help="csti: calibration data (n_samples, n_in) as .npy, .csv or .txt")
    add_rng(g)
    g.add_argument("-o", "--output", required=True, metavar="A.npz", help="topology file (.npz)")
    g.add_argument("--plot", metavar="A.png",
                   help=f"also write the adjacency image ({', '.join(IMAGE_SUFFIXES)})")
    g.set_defaults(func=_generate)

    p = sub.add_parser("plot", help="draw a topology file as an image",
                       description="Draw the adjacency (or degree distribution) of a .npz "
                                   "topology; a network file gets one panel per layer.")
    p.add_argument("path", metavar="A.npz", help="topology file (netshape .npz)")
    p.add_argument("-o", "--output", required=True, metavar="A.png",
                   help=f"image file ({', '.join(IMAGE_SUFFIXES)})")
    p.add_argument("--kind", choices=("adjacency", "degrees"), default="adjacency",
                   help="adjacency image (default) or in/out degree distributions")
    p.add_argument("--layer", help="only this layer of a network file")
    p.add_argument("--bins", type=int, default=512, help="largest image side before bucketing")
    p.set_defaults(func=_plot)

    i = sub.add_parser("info", help="shape, links, density and degrees of a topology file",
                       description="Print each layer of a .npz topology: inputs x outputs, "
                                   "links, density and input/output degree statistics.")
    i.add_argument("path", metavar="A.npz", help="topology file (netshape .npz)")
    i.set_defaults(func=_info)


def _check_applicable(args) -> None:
    for opt, models in _ONLY.items():
        if getattr(args, opt) is not None and args.model not in models:
            flag = "--" + opt.replace("_", "-")
            raise ValueError(f"{flag} applies to {', '.join(models)} only, not {args.model}")


def _load_data(path: str):
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--data={path!r}: no such file")
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    if p.suffix in (".csv", ".txt"):
        return np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, ndmin=2)
    raise ValueError(f"--data={path!r}: use a .npy, .csv or .txt file")


def _build(args):
    import netshape.generators as gen

    _check_applicable(args)
    if args.model == "csti":
        if args.data is None:
            raise ValueError("csti correlates calibration data: pass --data X.npy with shape "
                             "(n_samples, n_in)")
        X = _load_data(args.data)
        if args.n_in is not None and X.ndim == 2 and X.shape[1] != args.n_in:
            raise ValueError(f"--n-in={args.n_in} but --data has {X.shape[1]} features")
        return gen.csti(X, args.n_out, args.density, rng=args.rng)
    if args.n_in is None:
        raise ValueError(f"{args.model} needs --n-in")
    common = (args.n_in, args.n_out, args.density)
    if args.model == "er":
        return gen.er(*common, rng=args.rng)
    if args.model == "bsw":
        return gen.bsw(*common, beta=0.0 if args.beta is None else args.beta, rng=args.rng)
    if args.model == "brf":
        return gen.brf(*common, r=0.0 if args.r is None else args.r,
                       degrees=args.degrees or "fixed", rng=args.rng)
    return gen.bsf(*common, gamma=2.76 if args.gamma is None else args.gamma,
                   equal_partition=bool(args.equal_partition), resort=args.resort, rng=args.rng)


def _save_png(fig, path: Path) -> None:
    from ..plot._layout import save_figure

    save_figure(fig, path, dpi=120)


def _generate(args) -> int:
    # every output is checked before the (possibly long) build and before anything is written
    out = check_output_file(args.output, "--output", (".npz",))
    png = check_output_file(args.plot, "--plot", IMAGE_SUFFIXES) if args.plot else None
    t0 = time.perf_counter()
    A = _build(args)
    seconds = time.perf_counter() - t0
    from ..io import save_topology

    save_topology(make_parent(out), A)
    print(f"{args.model}: {A.shape[0]}x{A.shape[1]}, {A.nnz} links "
          f"(density {A.nnz / (A.shape[0] * A.shape[1]):.4g}) in {seconds:.2f} s -> {out}")
    if png is not None:
        from ..plot import adjacency

        ax = adjacency(A, title=f"{args.model} {A.shape[0]}×{A.shape[1]}, {A.nnz} links")
        _save_png(ax.figure, make_parent(png))
        print(f"plot -> {png}")
    return 0


def _layers(path: str, layer: str | None):
    from ..io import load_topology

    T = load_topology(path)
    layers = T if isinstance(T, dict) else {"layer": T}
    if layer is not None:
        if layer not in layers:
            raise ValueError(f"--layer={layer!r} is not in {path!r}; layers: "
                             f"{', '.join(layers)}")
        layers = {layer: layers[layer]}
    return layers


def _plot(args) -> int:
    out = check_output_file(args.output, "--output", IMAGE_SUFFIXES)
    layers = _layers(args.path, args.layer)
    from .._backend import require
    from ..plot import adjacency, degree_distribution

    plt = require("matplotlib.pyplot")
    n = len(layers)
    from ..plot._layout import layer_title

    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4), squeeze=False, layout="constrained")
    for ax, (name, A) in zip(axes[0], layers.items(), strict=True):
        if args.kind == "adjacency":
            adjacency(A, ax, bins=args.bins, title=layer_title(name, A))
        else:
            degree_distribution(A, ax, side="both")
            ax.set_title(layer_title(name, A), fontsize=9)
    _save_png(fig, make_parent(out))
    plt.close(fig)
    print(f"{args.kind} of {n} layer(s) -> {out}")
    return 0


def describe(name: str, A) -> str:
    """One paragraph: shape, links, density and degree summary of a layer."""
    import numpy as np

    n_in, n_out = A.shape
    din = np.diff(A.indptr)
    dout = np.bincount(A.indices, minlength=n_out)
    lines = [f"{name}: {n_in} inputs x {n_out} outputs, {A.nnz} links, "
             f"density {A.nnz / (n_in * n_out):.4g}"]
    for label, d in (("input degree ", din), ("output degree", dout)):
        lines.append(f"  {label}: min {d.min()}  mean {d.mean():.2f}  median "
                     f"{np.median(d):g}  max {d.max()}  std {d.std():.2f}  "
                     f"zero-degree neurons {int((d == 0).sum())}")
    return "\n".join(lines)


def _info(args) -> int:
    for name, A in _layers(args.path, None).items():
        print(describe(name, A))
    return 0
