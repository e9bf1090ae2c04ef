"""The training loop: train_and_evaluate(DataConfig, ModelConfig, TrainConfig).

A custom loop (a compiled tf.GradientTape step run by a tf.distribute strategy) with
mixed precision, checkpoints that resume, TensorBoard summaries, and at the end the
test fold's figures in <model_dir>/metrics.json and an exported SavedModel.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

import architectures
from architectures import transfer
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import ShardsError, label_counts, load_folds, source_order_warning
from input_pipeline.reader.targets import make_targets
from serving import export
from training import evaluators, losses, metrics, plots, reruns, runtime, steps, summaries
from training.checkpoints import Checkpoints, Interrupted, StopRequest
from training.config import RunError
from training.task import Heads, build_model_and_optimizers


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
    without validation), "label_counts", "train_seconds", "num_parameters"}
    (hyperparameter search selects on validation only).

    Raises RunError before anything is written when cfg.model_dir holds a run of other
    settings (reruns.check) or the batch does not split over the replicas."""
    runtime.split_cpu(cfg.cpu_devices)
    # Initialisation, dropout and the tf.data shuffles follow the seed in every run, so
    # runs compared with each other (tuning trials, CV folds) start alike. Op-level
    # determinism costs speed and stays behind --deterministic.
    keras.utils.set_random_seed(data_cfg.seed)
    if data_cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = runtime.choose_strategy(cfg.distribution)
    if warning := runtime.accelerator_warning(cfg.expect_gpu, cfg.distribution, cfg.cpu_devices):
        logging.warning("%s", warning)
    is_chief, task_id = runtime.worker_role(strategy)
    policy = runtime.choose_precision(cfg.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)  # Before any layer is built.
    manifest, train_files, test_files = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    config = {"fingerprint": reruns.fingerprint(data_cfg, model_cfg, cfg)}
    if warning := source_order_warning(manifest, data_cfg.shards_dir):
        logging.warning("%s", warning)
    if not manifest["image_size"] and not data_cfg.resize:
        # Original JPEGs (build_input --image_size=0) differ in size; batches need one.
        data_cfg = dataclasses.replace(data_cfg, resize=256)
        logging.info("the shards hold faces of varying size: resizing them to 256 (set --resize to change)")
    replicas = strategy.num_replicas_in_sync
    if data_cfg.batch_size % replicas:
        raise RunError(f"--batch_size={data_cfg.batch_size} does not split evenly over the {replicas} replicas "
                       f"of this {type(strategy).__name__}: choose a multiple of {replicas}")
    run = Heads.of(data_cfg, manifest)
    heads = run.sizes
    known = label_counts(manifest, data_cfg.test_fold, heads, run.bins, run.policy)
    for head, c in known["train"].items():
        logging.info("%s: %d training faces have a label, %d do not (masked out of its loss)", head, c["known"],
                     c["unknown"])
        if not c["known"]:
            raise ShardsError(f"no training face has a {head} label under --age_bins={data_cfg.age_bins} and "
                             f"the shards' label policy {run.policy}; choose other bins or heads")
    reruns.check(cfg.model_dir, config["fingerprint"])
    config.update(data=dataclasses.asdict(data_cfg), model=dataclasses.asdict(model_cfg), train=dataclasses.asdict(cfg),
                  resolved={"precision": policy, "strategy": type(strategy).__name__, "replicas": replicas})
    os.makedirs(cfg.model_dir, exist_ok=True)
    if is_chief:
        reruns.record(cfg.model_dir, config)
    logging.info("config: %s", json.dumps(config))

    class_weights = (losses.balanced_class_weights(manifest, data_cfg.test_fold, run.class_names, run.bins,
                                                   run.policy)
                     if cfg.class_weights == "balanced" else None)
    head_weights = losses.parse_head_weights(cfg.head_weights, heads)
    targets = make_targets(run.bins, run.policy)
    transfer_learning = architectures.freezes_backbone(model_cfg)
    with strategy.scope():
        model, optimizer, fine_tune_optimizer = build_model_and_optimizers(model_cfg, cfg, heads, policy)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        best_val = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_val")
        best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")  # 0: none scored yet.
        seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")  # Across resumes.
        totals = steps.StepTotals(heads)  # Not checkpointed: read back and zeroed at every log, eval and save.
    trackables = dict(model=model, optimizer=optimizer, step=step_var, best_val=best_val, best_step=best_step,
                      train_seconds=seconds)
    if fine_tune_optimizer is not None:
        trackables["fine_tune_optimizer"] = fine_tune_optimizer

    train_ds = strategy.distribute_datasets_from_function(
        lambda ctx: dataset.make_train_dataset(data_cfg, train_files, targets, ctx))
    iterator = iter(train_ds)
    unsaved = input_position_unsaved(data_cfg, strategy.num_replicas_in_sync)
    if unsaved:
        logging.info("the input position is not checkpointed (%s): a resumed run starts a new shuffle", unsaved)
    else:
        trackables["input"] = iterator  # Resume at the same input position.
    checkpoints = Checkpoints(cfg.model_dir, trackables, cfg.keep_checkpoints, is_chief, task_id)
    latest = checkpoints.restore()
    if latest:
        logging.info("resumed from %s at step %d", latest, int(step_var.numpy()))
    elif transfer_learning:
        logging.info("no checkpoint: starting from the %s backbone weights", model_cfg.weights)
    elif architectures.is_transfer(model_cfg.arch):
        logging.info("no checkpoint: starting from scratch (--weights=none): every layer trains from the first step")
    else:
        logging.info("no checkpoint: starting from scratch")
    start_step = int(step_var.numpy())
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        runtime.check_workers_agree(strategy, start_step)

    validation = evaluators.from_config("validation", data_cfg, train_files, targets, run)
    if validation is None:
        logging.info("no validation split (--val_fraction=0): the final weights are tested and exported")
    if is_chief:
        writers = {name: tf.summary.create_file_writer(os.path.join(cfg.model_dir, name))
                   for name in ("train", "val", "test")}
    else:
        writers = dict.fromkeys(("train", "val", "test"), tf.summary.create_noop_writer())
    if start_step == 0 and is_chief:
        # One batch for TensorBoard, read here: no cache to start and drop, no service job.
        local = dataclasses.replace(data_cfg, cache="none", cache_dir="", data_service="")
        summaries.write_input_images(writers["train"], dataset.make_train_dataset(local, train_files, targets),
                                     data_cfg.image_size, run.all_class_names, data_cfg.color_jitter)
        summaries.write_hparams(writers["train"], {**dataclasses.asdict(data_cfg), **dataclasses.asdict(model_cfg),
                                                   **dataclasses.asdict(cfg)})

    def start_phase(fine_tuning):
        """The optimizer and compiled step of a phase (transfer: head only, then fine-tuning)."""
        if transfer_learning:
            transfer.set_trainable(model, cfg.fine_tune_layers if fine_tuning else 0)
        active = fine_tune_optimizer if fine_tuning else optimizer
        step_fn = steps.make_train_step(model, active, strategy, heads, data_cfg.image_size, data_cfg.seed,
                                        data_cfg.color_jitter, cfg.label_smoothing, class_weights, head_weights,
                                        cfg.clip_norm, totals, cfg.jit_compile)
        return active, step_fn

    fine_tuning = fine_tune_optimizer is not None and start_step >= cfg.head_steps
    active, train_step = start_phase(fine_tuning)
    log = summaries.TrainLog(writers["train"], heads, data_cfg.batch_size, start_step, cfg.train_steps)
    clock = time.monotonic()

    def save(step, best=False):
        """Saves a checkpoint with the training time so far."""
        nonlocal clock
        now = time.monotonic()
        seconds.assign_add(now - clock)
        clock = now
        return checkpoints.save_best(step) if best else checkpoints.save(step)

    # Several workers must read their totals (and the stop votes in them) at the same steps.
    one_worker = not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    with StopRequest() as stop:
        try:
            for step in range(start_step + 1, cfg.train_steps + 1):
                if fine_tune_optimizer is not None and not fine_tuning and step > cfg.head_steps:
                    fine_tuning = True
                    logging.info("step %d: fine-tuning the top %d backbone layers", step, cfg.fine_tune_layers)
                    active, train_step = start_phase(fine_tuning)
                train_step(iterator, tf.constant(step, tf.int64), tf.constant(stop.signum > 0))
                step_var.assign(step)
                last = step == cfg.train_steps
                logs, validates = step % cfg.log_every == 0 or last, step % cfg.eval_every == 0 or last
                saves = step % cfg.checkpoint_every == 0 or last
                histograms = cfg.histogram_every and step % cfg.histogram_every == 0
                if not (logs or validates or saves or histograms or (one_worker and stop.signum)):
                    continue  # Nothing read back: the next step is queued at once.
                interval = totals.read()  # The steps since the last read-back.
                if interval["first_nonfinite"]:
                    raise FloatingPointError(f"the training loss is {'nan' if np.isnan(interval['loss']) else 'inf'} "
                                             f"at step {interval['first_nonfinite']}; the last good checkpoint "
                                             f"({checkpoints.latest}) is kept")
                log.update(interval)
                if logs:
                    log.write(step, active)
                if histograms:
                    with writers["train"].as_default(step=step):
                        for variable in model.trainable_variables:
                            tf.summary.histogram(variable.path, variable)
                if interval["stops"] > 0:  # Some worker was told to stop; all of them save this step and stop.
                    raise Interrupted(stop.signum, step, save(step))
                if validates and validation is not None:
                    result = validation.run(model)
                    summaries.write_eval_summaries(writers["val"], result.figures, step, "val", run.class_names)
                    score = result.score  # None: no labelled validation face; nothing to choose by.
                    logging.info("step %d validation: %s", step,
                                 ", ".join(metrics.describe(h, f) for h, f in result.figures.items()))
                    # The same on every worker: same weights, same data.
                    if score is not None and score > best_val.numpy():
                        best_val.assign(score)
                        best_step.assign(step)
                        save(step, best=True)
                    if on_validation is not None:
                        on_validation(step, score)
                if saves:
                    save(step)
            if stop.signum:  # Asked to stop during the last validation: training is saved, skip the rest.
                raise Interrupted(stop.signum, cfg.train_steps, checkpoints.latest)
        finally:
            for writer in writers.values():
                writer.flush()
    logging.info("trained %d steps; weights fingerprint %s", cfg.train_steps, runtime.fingerprint(model))
    if not is_chief:
        return None
    extra = {"label_counts": known, "train_seconds": float(seconds.numpy()),
             "num_parameters": int(model.count_params())}
    if best_step.numpy():
        extra["selection"] = {"by": "validation score (metrics.score)", "score": float(best_val.numpy()),
                              "step": int(best_step.numpy())}
    else:
        extra["selection"] = {"by": "none: " + ("no validation split (--val_fraction=0)" if validation is None else
                                                "no validation pass had a labelled face") + "; the final weights"}
    if not test:
        return {"best_val": float(best_val.numpy()) if best_step.numpy() else None, **extra}
    best = checkpoints.best if best_step.numpy() else None
    return finish(model, model_cfg, run, data_cfg, cfg, manifest, test_files, best, writers["test"], targets, extra)


def input_position_unsaved(data_cfg, replicas):
    """Why the training input's position cannot go into checkpoints, or "" if it can."""
    if replicas > 1:
        return f"{replicas} replicas: distributed iterators do not restore reliably"
    if data_cfg.data_service:
        return "a tf.data service's iterator has no state here to save"
    if data_cfg.cache != "none":
        return f"--cache={data_cfg.cache}: a checkpoint would hold the cache and the shuffle buffer"
    return ""


def finish(model, model_cfg, run, data_cfg, cfg, manifest, test_files, best, writer, targets, extra):
    """Evaluates the `best` checkpoint (or, if None, the model as it is: "final") on the
    test fold, writes metrics.json and exports. The figures are those of the exported
    model: the float32 copy, outside any strategy."""
    heads = run.sizes
    model = export.float32_copy(model, model_cfg, heads)
    if best:
        tf.train.Checkpoint(model=model).restore(best).assert_existing_objects_matched()
    results = {"test_fold": data_cfg.test_fold, "checkpoint": best or "final",
               "synthetic_data": manifest.get("synthetic", False), "subject_ids": manifest.get("subject_ids", "given"),
               "heads": list(heads), "age_bins": run.bins.as_dict(), "label_policy": run.policy, **extra}
    for evaluator in ("test_single_crop", "test_over_sampled"):
        result = evaluators.from_config(evaluator, data_cfg, test_files, targets, run).run(model)
        name, figures = evaluators.EVALUATORS[evaluator].crop, result.figures
        summaries.write_eval_summaries(writer, figures, cfg.train_steps, f"test_{name}", run.class_names)
        results[name] = figures
        for head, f in figures.items():
            if head not in run.class_names or not f["num_examples"]:
                continue
            title = f"test fold {data_cfg.test_fold} / {head}, {name}"
            keras.utils.save_img(os.path.join(cfg.model_dir, f"confusion_{head}_{name}.png"),
                                 plots.confusion_image(f["confusion_matrix"], run.class_names[head], title)[0])
            keras.utils.save_img(os.path.join(cfg.model_dir, f"reliability_{head}_{name}.png"),
                                 plots.reliability_image(f["reliability"], f["ece"], title)[0])
    writer.flush()
    reruns.write_whole(os.path.join(cfg.model_dir, "metrics.json"), results)
    if cfg.export:
        stored = data_cfg.resize or manifest["image_size"] or 256
        # The framing of the stored faces, and their size, which prediction crops new photos to.
        face_crop = {**manifest.get("face_crop", {"method": "none"}), "image_size": manifest["image_size"]}
        results["export_dir"] = export.export(model, heads, run.class_names, run.bins, stored, data_cfg.image_size,
                                              os.path.join(cfg.model_dir, "export"), face_crop)
    return results
