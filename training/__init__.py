"""Training on a shard set: train_and_evaluate(DataConfig, ModelConfig, TrainConfig).

    config.py        TrainConfig              flags.py     model.py's flags -> the three configs
    runtime.py       strategy, precision, workers
    optim.py         optimizers and schedules  losses.py    masked cross-entropy, class weights
    steps.py         compiled train and predict steps
    metrics.py       exact, one-off, per-class accuracy, confusion matrix over a pass
    summaries.py     TensorBoard and progress lines        plots.py  confusion matrix, reliability
    reruns.py        a run's fingerprint, reruns of other settings refused
    checkpoints.py   resume and best checkpoints, stop on SIGTERM or Ctrl-C
    task.py          the heads' label space, the model and its optimizers
    evaluators.py    named passes: validation, test single crop, test over-sampled
    loop.py          the loop, the test fold's figures and the export

The experiments over many runs (tuning, cross-validation, the architecture comparison)
are the experiments package, which imports this one and never the reverse.
"""
