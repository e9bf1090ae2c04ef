"""Evaluation: named evaluators (evaluators.py) that score one pass of a predict function
over a dataset, with accuracy (metrics.py), calibration and fairness figures. Imports
nothing from training or experiments: the trainer and the drivers call it."""
