"""The torch-free contract of the graph core, in the manner of scikit-network's ``test_API``.

Loops over every registered predictor (:func:`netshape.linkpred.available`),
every generator (:func:`netshape.generators.available`) and the core
functions, so that a new predictor or generator is checked without a new
test. :func:`test_contract_holds_with_torch_blocked` runs the same checks in a
subprocess where ``import torch`` raises, after importing every core module
(found with :mod:`pkgutil`, not listed by hand), and asserts none of them
imported torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import netshape
import netshape as ns

#: packages allowed to need torch: the adapter and the training runner
TORCH_PACKAGES = ("netshape.torch", "netshape.train", "netshape.lm")


def core_modules() -> list[str]:
    """Every module of netshape outside :data:`TORCH_PACKAGES` (walked, not listed)."""
    import pkgutil

    names = [m.name for m in pkgutil.walk_packages(netshape.__path__, "netshape.")]
    return sorted(n for n in ["netshape", *names]
                  if not any(n == p or n.startswith(p + ".") for p in TORCH_PACKAGES))


def _layers(seed: int = 0):
    rng = np.random.default_rng(seed)
    out = [rng.random((n_in, n_out)) < p for n_in, n_out, p in
           [(9, 7, 0.3), (6, 11, 0.5), (5, 5, 0.0), (4, 4, 1.0), (1, 8, 0.5), (12, 3, 0.2)]]
    out[0][0] = False  # an input without links
    return out


def check_predictor(name: str) -> None:
    """Scores of ``name`` (every route): float32, shape of A, finite, >= 0, 0 on links."""
    for method in ns.linkpred.methods(name):
        for A in _layers():
            for given in (A, A.astype(np.float64), sp.csr_array(A)):
                S = ns.linkpred.predict(given, name, method=method, rng=0)
                S = S.toarray() if sp.issparse(S) else np.asarray(S)
                assert S.dtype == np.float32 and S.shape == A.shape, (name, method)
                assert np.isfinite(S).all() and (S >= 0).all(), (name, method)
                assert (S[A] == 0).all(), (name, method)
        again = ns.linkpred.predict(_layers()[0], name, method=method, rng=0)
        np.testing.assert_array_equal(again, ns.linkpred.predict(_layers()[0], name,
                                                                 method=method, rng=0))
    # an unknown route is refused, naming the argument and the value
    with pytest.raises((ValueError, TypeError), match="method='nope'"):
        ns.linkpred.predict(_layers()[0], name, method="nope")


def _generate(name: str, n_in: int, n_out: int, density: float, rng):
    fn = getattr(ns.generators, name)
    if name == "csti":
        X = np.random.default_rng(7).normal(size=(40, n_in))
        return fn(X, n_out, density, rng=rng)
    return fn(n_in, n_out, density, rng=rng)


def check_generator(name: str) -> None:
    """Canonical bool csr_array (n_in, n_out), exactly round(d n_in n_out) links, seeded."""
    for n_in, n_out, density in [(20, 30, 0.1), (16, 16, 0.5), (8, 40, 1.0)]:
        A = _generate(name, n_in, n_out, density, rng=3)
        assert isinstance(A, sp.csr_array) and A.dtype == bool and A.shape == (n_in, n_out)
        assert A.nnz == int(np.floor(density * n_in * n_out + 0.5)), (name, density)
        assert A.has_sorted_indices and (A.data == 1).all()
        B = _generate(name, n_in, n_out, density, rng=3)
        assert (A != B).nnz == 0, f"{name}: same rng, different layer"
    with pytest.raises(ValueError, match="density"):
        _generate(name, 10, 10, 1.5, rng=0)


def check_core() -> None:
    """Percolation, metrics, schedules and sampling on a small chain, in every input form."""
    rng = np.random.default_rng(1)
    chain = [rng.random((8, 6)) < 0.3, rng.random((6, 5)) < 0.3, rng.random((5, 3)) < 0.5]
    named = dict(zip(("fc1", "fc2", "fc3"), chain, strict=True))
    out, rep = ns.percolate(chain)
    assert [A.shape for A in out] == [A.shape for A in chain]
    out_named, rep_named = ns.percolate(named, pairs=[("chain", "fc1", "fc2"),
                                                      ("chain", "fc2", "fc3")])
    assert [A.nnz for A in out_named.values()] == [A.nnz for A in out]
    assert rep.links_removed == rep_named.links_removed
    assert 0.0 <= ns.metrics.anp(chain) <= 1.0
    assert ns.metrics.cap(chain).paths >= 0
    assert ns.metrics.itop([chain[0], chain[0]]) == pytest.approx(chain[0].mean())
    s = ns.metrics.degree_stats(chain[0])
    assert s.links == int(chain[0].sum()) and s.shape == chain[0].shape
    for fn in (ns.schedules.sigmoid_density, ns.schedules.cubic_density):
        assert fn(0, start=0, end=10, s_init=0.5, s_final=0.1) == pytest.approx(0.5)
        assert fn(10, start=0, end=10, s_init=0.5, s_final=0.1) == pytest.approx(0.1)
    pos, _ = ns.sampling.choose_links(np.arange(1.0, 7.0), 3, allowed=np.ones(6, bool), rng=0)
    assert sorted(np.asarray(pos).tolist()) == [3, 4, 5]
    with pytest.raises(TypeError, match="single array"):
        ns.percolate(chain[0])


@pytest.mark.parametrize("name", ns.linkpred.available())
def test_every_predictor_keeps_the_contract(name):
    check_predictor(name)


@pytest.mark.parametrize("name", ns.generators.available())
def test_every_generator_keeps_the_contract(name):
    check_generator(name)


def test_core_functions_keep_the_contract():
    check_core()


def test_core_modules_are_found_by_walking_the_package():
    mods = core_modules()
    assert {"netshape.linkpred._registry", "netshape.percolation._pairs", "netshape.bench._worker",
            "netshape.analyze", "netshape._cli.train"} <= set(mods)
    assert not any(m.startswith(TORCH_PACKAGES) for m in mods)


_BLOCKED_RUN = r"""
import importlib, sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"import of {name} blocked: the core must not need torch",
                                      name=name)
        return None

sys.meta_path.insert(0, NoTorch())
sys.path.insert(0, TESTS)
import test_api
optional = {"matplotlib", "cupy", "cupyx", "igraph", "powerlaw", "safetensors"}
for name in test_api.core_modules():
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:  # a missing optional extra other than torch is allowed
        if (exc.name or "").split(".")[0] not in optional:
            raise
    assert "torch" not in sys.modules, f"importing {name} imported torch"
for name in test_api.ns.linkpred.available():
    test_api.check_predictor(name)
for name in test_api.ns.generators.available():
    test_api.check_generator(name)
test_api.check_core()
assert "torch" not in sys.modules
print("contract ok")
"""


def test_contract_holds_with_torch_blocked():
    tests = str(Path(__file__).resolve().parent)
    code = _BLOCKED_RUN.replace("TESTS", repr(tests))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("contract ok")
