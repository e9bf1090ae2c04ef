"""Experiments over many training runs, each run trained by training.loop.train_and_evaluate.

    tuning.py                  hyperparameter search on Optuna: the objective, pruning, resuming
    study_report.py            a study's table, best flags, plots and TensorBoard HParams
    cross_validation.py        the 5-fold protocol's runs and tables; one network or one per head
    architecture_comparison.py architectures side by side: table, plot, the cheapest that reaches a score
    architecture_cost.py       parameters, multiply-adds, training speed and latency of an architecture
    plots.py                   per-fold bars of a cross-validation
"""
