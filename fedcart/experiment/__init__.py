"""`fedcart experiment`: an IoT detection task trained federated, centralized and local-only.

harness.py     the three scenarios on the same rows and epoch budget
resources.py   what each piece cost: wall time, CPU, peak RSS, energy, codec stages
report.py      the report folder: per-round JSON/CSV, round logs, summary table
plots.py       the report's figures (matplotlib, Agg)
"""
