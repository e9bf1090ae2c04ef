"""Training on a shard set: loop.train_and_evaluate(DataConfig, ModelConfig, TrainConfig).

    loop.py          train_and_evaluate: the orchestration of one run; the test fold's
                     figures, plots and the export at the end (finish)
    task.py          Task: the label space, the objective, the model, its optimizers and phases
    trainer.py       Trainer: the compiled step in a strategy, checkpoints, stop signals,
                     read-backs, summaries, the best checkpoint by validation
    runtime.py       strategy, precision, workers, seeds (Runtime)
    steps.py         compiled train and predict steps
    losses.py        masked cross-entropy, class and head weights, the Objective
    optim.py         optimizers and schedules
    checkpoints.py   resume and best checkpoints, stop on SIGTERM or Ctrl-C
    summaries.py     TensorBoard and progress lines        plots.py  confusion matrix, reliability
    reruns.py        a run's fingerprint, reruns of other settings refused
    config.py        TrainConfig              flags.py     model.py's flags -> the three configs

The figures (named evaluators; accuracy, calibration, fairness) are the evaluation
package, which training calls. The experiments over many runs (tuning, cross-validation,
the architecture comparison) are the experiments package, which imports this one and
never the reverse.
"""
