"""The ablation lab (chapter 11): the paper's experiments as named config deltas, multi-seed runs through the run
cache, a results table with provenance, and a report with t intervals and paired comparisons.

* ``registry``: ``ABLATIONS`` (name -> ``Ablation``), ``ablation_profile(name, profile)``
* ``runner``: ``BUDGETS``, ``run_seed``, ``run_ablation``
* ``results``: the CSV table (``read_results``, ``append_result``, ``default_results_path``)
* ``stats``: ``t_interval``, ``paired_comparison``
* ``report``: ``report_rows``, ``format_report``, ``plot_report``
"""

from mvgtutor.ablations.registry import ABLATIONS, DEFAULT, Ablation, PaperResult, ablation_profile, get_ablation
from mvgtutor.ablations.report import format_report, plot_report, report_rows
from mvgtutor.ablations.results import append_result, default_results_path, read_results, reference_results_path
from mvgtutor.ablations.runner import BUDGETS, run_ablation, run_seed
from mvgtutor.ablations.stats import paired_comparison, t_interval

__all__ = ["ABLATIONS", "BUDGETS", "DEFAULT", "Ablation", "PaperResult", "ablation_profile", "append_result",
           "default_results_path", "format_report", "get_ablation", "paired_comparison", "plot_report",
           "read_results", "reference_results_path", "report_rows", "run_ablation", "run_seed", "t_interval"]
