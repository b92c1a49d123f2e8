"""Evaluation: metrics, benchmark datasets, the runner, reports and plots (``sete-vsr eval``).

* :mod:`.metrics`: every metric by name, each declaring direction, kind, scope,
  input convention and implementation (``build_metric``); their weights are looked for
  offline through :mod:`sete_vsr.weight_dirs`;
* :mod:`.datasets`: Vid4, REDS4, SPMCS, UDM10, VideoLQ and generic folders, with
  the LR made once by a named degradation and cached as PNG;
* :mod:`.runner`: methods x clips x metrics with cached outputs and an optional
  Accelerate split of clips;
* :mod:`.report` and :mod:`.plots`: JSON/CSV, the paper-layout Markdown table, PNG plots.
"""
