"""``netshape analyze``: read a checkpoint or run directory, measure it, write a report.

>>> from netshape.analyze import analyze_source, write_report
"""

from ._report import Analysis, analyze_source, find_inputs, read_history, write_report

__all__ = ["Analysis", "analyze_source", "find_inputs", "read_history",
           "write_report"]
