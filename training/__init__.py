"""Training on a shard set: train_and_evaluate(DataConfig, ModelConfig, TrainConfig).

    config.py        TrainConfig              flags.py     model.py's flags -> the three configs
    runtime.py       strategy, precision, workers
    optim.py         optimizers and schedules  losses.py    masked cross-entropy, class weights
    steps.py         compiled train and predict steps
    metrics.py       exact, one-off, per-class accuracy, confusion matrix over a pass
    summaries.py     TensorBoard and progress lines        plots.py  confusion matrix and bar pictures
    checkpoints.py   resume and best checkpoints, stop on SIGTERM or Ctrl-C
    loop.py          the loop, the test fold's figures and the export
    cross_validation.py   the 5-fold protocol's runs and tables
"""
