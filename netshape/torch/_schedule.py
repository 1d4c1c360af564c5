"""The schedules of :class:`~netshape.torch.engine.DynamicSparseTrainer`, by step.

Density, removal fraction ``zeta``, soft-removal ``delta`` and regrowth
temperature at any step, and the update that cuts the most links: pure
functions of the resolved method (``config``), ``density``, ``total_steps``
and ``update_every``, which the trainer sets before any of them is asked.
"""

from __future__ import annotations

from .. import schedules

__all__ = ["ScheduleMixin"]


class ScheduleMixin:
    """``density_at`` / ``zeta_at`` / ``delta_at`` / ``temperature_at`` / ``steepest_cut``."""

    def density_at(self, step: int) -> float:
        """Scheduled density at ``step`` (the value the update at ``step`` reaches)."""
        c, T = self.config, self.total_steps
        if c["schedule"] == "constant":
            return self.density
        kw = dict(start=c["decay_start"] * T, end=c["decay_end"] * T,
                  s_init=c["initial_density"], s_final=self.density)
        if c["schedule"] == "sigmoid":
            return schedules.sigmoid_density(step, k=c["k"], half_length=c["half_length"], **kw)
        if c["schedule"] == "cubic":
            return schedules.cubic_density(step, **kw)
        return schedules.mest_density(step, **kw)

    def zeta_at(self, step: int) -> float:
        """Fraction of links the update at ``step`` removes (cosine-decayed under
        ``zeta_schedule="cosine"``)."""
        c = self.config
        if c["zeta_schedule"] == "cosine":
            return schedules.cosine_zeta(step, start=0, end=c["update_until"] * self.total_steps,
                                         zeta=c["zeta"])
        return c["zeta"]

    def delta_at(self, step: int) -> float:
        """Soft-removal ``delta`` at ``step``: linear from ``delta[0]`` to ``delta[1]``
        over the first ``delta_end`` of the run."""
        d0, d1 = self.config["delta"]
        return schedules.linear_ramp(step, start=0, end=self.config["delta_end"] * self.total_steps,
                                     v_init=d0, v_final=d1)

    def temperature_at(self, step: int) -> float:
        """Regrowth temperature at ``step``: linear from ``T[0]`` to ``T[1]`` over the
        same ramp as :meth:`delta_at`."""
        t0, t1 = self.config["T"]
        return schedules.linear_ramp(step, start=0, end=self.config["delta_end"] * self.total_steps,
                                     v_init=t0, v_final=t1)

    def steepest_cut(self) -> tuple[int, int, float, float] | None:
        """The scheduled update that removes the largest fraction of the remaining links.

        Returns ``(update, step, density_before, density_after)`` (``update``
        counts from 1), or None when no update lowers the density.
        """
        d_prev, worst, best_frac = self.density_at(0), None, 0.0
        for i, s in enumerate(range(self.update_every, self.total_steps, self.update_every), 1):
            if s > self.config["update_until"] * self.total_steps:
                break
            d = self.density_at(s)
            if d_prev > 0 and 1.0 - d / d_prev > best_frac + 1e-12:
                best_frac, worst = 1.0 - d / d_prev, (i, s, d_prev, d)
            d_prev = d
        return worst
