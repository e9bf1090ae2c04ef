"""The training loop: train_and_evaluate(DataConfig, ModelConfig, TrainConfig).

The orchestration of one run: the runtime (training/runtime.py), the task
(training/task.py), the trainer (training/trainer.py) with its validation evaluator
(evaluation/evaluators.py), and at the end the test fold's figures in
<model_dir>/metrics.json, their plots and an exported SavedModel.
"""

import dataclasses
import json
import os

import keras
import tensorflow as tf
from absl import logging

from evaluation import calibration, evaluators
from input_pipeline.config import NO_TEST_FOLD
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds, source_order_warning
from serving import export, metadata
from training import ema as ema_lib
from training import age_prior, plots, reruns, runtime, steps, summaries
from training.config import RunError
from training.task import Task
from training.trainer import Trainer


def train_and_evaluate(data_cfg, model_cfg, cfg, on_validation=None, test=True):
    """Trains (resuming from cfg.model_dir if it holds a checkpoint), evaluates the test
    fold and returns the metrics written to metrics.json (None on a worker that is not
    the chief). Raises Interrupted after saving a checkpoint on SIGTERM or Ctrl-C.

    `on_validation(step, score)` is called after each validation pass with its score
    (metrics.score, None when the split had no labelled faces) and may raise to end the
    run there (a tuner pruning a trial). The best validation score picks the checkpoint
    that is tested and exported; with no validation split (val_fraction 0) the final
    weights are, and metrics.json says "checkpoint": "final". With `test=False` the test
    fold is never looked at: nothing is exported and the result is {"best_val" (None
    without validation), "label_counts", "train_seconds", "num_parameters", "selection"}
    (hyperparameter search selects on validation only).

    Raises RunError before anything is written when cfg.model_dir holds a run of other
    settings (reruns.check), the batch does not split over the replicas, or check_scored."""
    check_scored(data_cfg)
    env = runtime.start(cfg, data_cfg.seed, data_cfg.deterministic)  # Before any layer is built.
    manifest, train_files, test_files = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    settings = reruns.fingerprint(data_cfg, model_cfg, cfg)  # As asked, before anything is resolved.
    if warning := source_order_warning(manifest, data_cfg.shards_dir):
        logging.warning("%s", warning)
    data_cfg = dataset.with_stored_size(data_cfg, manifest)
    env.check_batch(data_cfg.batch_size)
    task = Task.of(data_cfg, model_cfg, cfg, manifest)
    for line in task.objective.describe_weights(task.class_names.get("age", ())):
        logging.info("%s", line)
    if task.logit_offsets:
        logging.info("%s", age_prior.describe(task.logit_offsets, cfg.age_prior_correction))
    for head, c in task.label_counts["train"].items():
        logging.info("%s: %d training faces have a label, %d do not (masked out of its loss)", head, c["known"],
                     c["unknown"])
    reruns.check(cfg.model_dir, settings)
    config = {"fingerprint": settings, "data": dataclasses.asdict(data_cfg), "model": dataclasses.asdict(model_cfg),
              "train": dataclasses.asdict(cfg), "resolved": {"precision": env.policy, "replicas": env.replicas,
                                                             "strategy": type(env.strategy).__name__}}
    os.makedirs(cfg.model_dir, exist_ok=True)
    if env.is_chief:
        reruns.record(cfg.model_dir, config)
    logging.info("config: %s", json.dumps(config))

    trainer = Trainer(cfg, env, task, data_cfg,
                      lambda ctx: dataset.make_train_dataset(data_cfg, train_files, task.targets, ctx))
    # One batch for TensorBoard, read here: no cache to start and drop, no service job.
    local = dataclasses.replace(data_cfg, cache="none", cache_dir="", data_service="")
    trainer.write_start(lambda: dataset.make_train_dataset(local, train_files, task.targets),
                        {**config["data"], **config["model"], **config["train"]})
    validation = evaluators.from_config("validation", data_cfg, train_files, task)
    if validation is None:
        logging.info("no validation split (--val_fraction=0): the final weights are tested and exported")
    trainer.fit(validation, on_validation)
    if not env.is_chief:
        return None
    extra = {"label_counts": task.label_counts, "train_seconds": float(trainer.seconds.numpy()),
             "num_parameters": int(trainer.model.count_params()), "selection": trainer.selection(validation)}
    if not test:
        return {"best_val": extra["selection"].get("score"), **extra}
    return finish(trainer.model, task, data_cfg, cfg, manifest, test_files, trainer.best_checkpoint,
                  trainer.writers.get("test"), extra, validation, trainer.ema)


def check_scored(data_cfg):
    """RunError for a run with neither a test fold nor a validation split: nothing would score
    it, pick its checkpoint or calibrate it (the benchmarks, which only train, may)."""
    if not data_cfg.tested and not data_cfg.val_fraction:
        raise RunError(f"--test_fold={NO_TEST_FOLD} (every fold trains) with --val_fraction=0: nothing would score "
                       "the run, pick its checkpoint or calibrate it; keep a validation share (e.g. 0.1)")


def finish(model, task, data_cfg, cfg, manifest, test_files, best, writer, extra, validation=None, ema=None):
    """Evaluates the `best` checkpoint (or, if None, the model as it is: "final") on the
    test fold with the test evaluators (none with test_fold NO_TEST_FOLD: metrics.json then
    holds no test figure and says "untested"), writes metrics.json and the plots, and exports.
    The figures are those of the exported model: the float32 copy, outside any strategy,
    with each class head's temperature fitted on the `validation` evaluator's split
    (none without one): the test figures give ECE and NLL before and after it. With
    `ema` (the run's ema.WeightAverage) the weights are its moving averages, the best
    checkpoint's or the last."""
    model = export.float32_copy(model, task.model_cfg, task.sizes)
    averages = ema
    if best:
        averages = ema_lib.WeightAverage(model, cfg.ema_decay) if ema is not None else None
        tf.train.Checkpoint(model=model, **({"ema": averages} if averages else {})).restore(
            best).assert_existing_objects_matched()
    if averages is not None:
        averages.assign_to(model)
    temperatures, calibrated_by = fit_temperatures(model, task, validation, cfg.flip_test)
    tested = data_cfg.tested
    results = {"test_fold": data_cfg.test_fold, "checkpoint": best or "final",
               "weights": (f"moving average (--ema_decay={cfg.ema_decay}, reached {averages.reached():.4f})"
                           if averages is not None else "as trained"),
               "synthetic_data": manifest.get("synthetic", False), "subject_ids": manifest.get("subject_ids", "given"),
               "heads": list(task.sizes), "age_bins": task.bins.as_dict(), "label_policy": task.policy, **extra,
               "calibration": {"by": calibrated_by, "temperatures": temperatures}, "score": {}}
    if not tested:  # Every fold trained: no figure at all rather than figures of faces it trained on.
        results["untested"] = f"--test_fold={NO_TEST_FOLD}: every fold trained; score the export on your own photos"
    for name in ("test_single_crop", "test_over_sampled") if tested else ():
        evaluator = evaluators.from_config(name, data_cfg, test_files, task)
        result = evaluator.run(steps.make_predict_step(model, task.sizes, evaluator.spec.oversample, temperatures,
                                                       cfg.flip_test, task.logit_offsets))
        crop, figures = evaluator.spec.crop, result.figures
        for head, t in temperatures.items():
            if t:
                figures[head]["temperature"] = t
        summaries.write_eval_summaries(writer, figures, cfg.train_steps, f"test_{crop}", task.class_names)
        results[crop], results["score"][crop] = figures, result.score
        for head, f in figures.items():
            if head in task.class_names and f["num_examples"]:
                save_plots(cfg.model_dir, f"{head}_{crop}", f, task.class_names[head],
                           f"test fold {data_cfg.test_fold} / {head}, {crop}")
    if writer is not None:
        writer.flush()
    reruns.write_whole(os.path.join(cfg.model_dir, "metrics.json"), results)
    if cfg.export:
        stored = data_cfg.resize or manifest["image_size"] or 256
        # The framing of the stored faces, and their size, which prediction crops new photos to.
        face_crop = {**manifest.get("face_crop", {"method": "none"}), "image_size": manifest["image_size"]}
        results["export_dir"] = export.export(model, task.sizes, task.class_names, task.bins, stored,
                                              data_cfg.image_size, os.path.join(cfg.model_dir, "export"), face_crop,
                                              {head: t for head, t in temperatures.items() if t}, cfg.flip_test,
                                              task.logit_offsets, cfg.age_prior_correction,
                                              metadata.trained_on(data_cfg.shards_dir, manifest, data_cfg.test_fold))
    return results


def fit_temperatures(model, task, validation, flip=False):
    """({head: temperature or None}, how they were fitted): temperature scaling of each
    class head on the validation split's single crop (calibration.fit), on the logits as trained (an age
    head's prior correction comes after: heads.probabilities_of); none without a
    validation split, and None for a head with no labelled face there (its
    probabilities stay the model's own)."""
    if validation is None:
        logging.info("no validation split: the exported probabilities are not calibrated")
        return {}, "none: no validation split (--val_fraction=0); the probabilities are the model's own"
    temperatures, counts = calibration.fit(steps.make_predict_step(model, task.sizes, oversample=False, flip=flip),
                                           validation.dataset, task)
    logging.info("temperature scaling on the validation split: %s", ", ".join(
        f"{head} T={t:.3f} ({counts[head]} faces)" if t else f"{head}: no labelled face, not scaled"
        for head, t in temperatures.items()))
    for head, t in temperatures.items():
        if t and (counts[head] < 50 or calibration.at_edge(t)):
            logging.warning("%s's temperature %.3f rests on %d validation faces%s: its calibrated probabilities "
                            "may be far from right", head, t, counts[head],
                            " and lies at the edge of the search" if calibration.at_edge(t) else "")
    return temperatures, (f"temperature scaling: one T per class head, minimising the NLL of the validation "
                          f"split's {', '.join(f'{counts[h]} {h}' for h in counts)} labelled faces")


def save_plots(model_dir, name, figures, class_names, title):
    """confusion_<name>.png and reliability_<name>.png of a class head's figures."""
    keras.utils.save_img(os.path.join(model_dir, f"confusion_{name}.png"),
                         plots.confusion_image(figures["confusion_matrix"], class_names, title)[0])
    keras.utils.save_img(os.path.join(model_dir, f"reliability_{name}.png"),
                         plots.reliability_image(figures["reliability"], figures["ece"], title,
                                                 calibrated=summaries.calibrated_curve(figures))[0])
