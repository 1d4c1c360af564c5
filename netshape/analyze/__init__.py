"""``netshape analyze``: read a checkpoint or run directory, measure it, write a report.

:mod:`~netshape.analyze._inputs` finds and reads the inputs,
:mod:`~netshape.analyze._measures` measures them and writes the tables and
``report.md``, :mod:`~netshape.analyze._figures` lists the figures (a new
plot is one entry).

>>> from netshape.analyze import analyze_source, write_report
"""

from ._measures import Analysis, analyze_source, find_inputs, read_history, write_report

__all__ = ["Analysis", "analyze_source", "find_inputs", "read_history",
           "write_report"]
