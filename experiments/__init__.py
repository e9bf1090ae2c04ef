"""Experiments: many training runs (each trained by training.loop.train_and_evaluate) and studies of an export.

    tuning.py                  hyperparameter search on Optuna: the objective, pruning, resuming
    study_report.py            a study's table, best flags, plots and TensorBoard HParams
    cross_validation.py        the 5-fold protocol's runs and tables; one network or one per head
    architecture_comparison.py architectures side by side: table, plot, the cheapest that reaches a score
    architecture_cost.py       parameters, multiply-adds, training speed and latency of an architecture
    plots.py                   per-fold bars of a cross-validation
    degradations.py            controlled degradations of a photo, for the robustness study
    robustness.py              the robustness study: an export's figures on degraded photos
    robustness_report.py       its robustness.csv, robustness.md and curves
"""
