"""A run's fingerprint: every setting its result depends on, recorded in its config.json,
and the check a rerun into the same folder passes.

Running the same command again resumes a run; running another one into its folder would
mix two trainings under one name (resume the weights of one, overwrite the config of
the other), and an experiment driver reading the folder's metrics.json would report
the old run under the new flags. So model.py refuses a --model_dir that holds a run of
other settings, naming each one that differs, and the experiment drivers
(cross-validation, the architecture comparison) reuse a finished run only when its
fingerprint matches, and train it again when told to (--retrain).
"""

import dataclasses
import json
import os
import shutil

from absl import logging

import architectures
from input_pipeline.reader.manifest import manifest_sha256
from training import runtime
from training.config import RunError

# Settings that do not change what a run learns or reports: where it writes, how often
# it logs and saves, how its input is delivered (a cache or a tf.data service hands it
# the same faces), which devices run it and whether XLA compiles it. The shard set is
# named by its manifest's hash (SHARDS), not by the path it was given as; the heads and
# the precision by what they resolve to (--task=age is --heads=age; --mixed_precision=auto
# is float32 on one machine and mixed_float16 on another, with other weights to restore).
NOT_IN_FINGERPRINT = frozenset({"model_dir", "log_every", "checkpoint_every", "keep_checkpoints", "histogram_every",
                                "export", "cache", "cache_dir", "data_service", "distribution", "cpu_devices",
                                "jit_compile", "expect_gpu", "shards_dir", "task", "heads", "mixed_precision"})
SHARDS = "shards"  # The fingerprint's entry for the shard set: its manifest's sha256.
_RUN_FILES = (os.path.join("checkpoints", "checkpoint"), os.path.join("best", "checkpoint"), "metrics.json")


def unused(settings):
    """The settings a run of fingerprint `settings` never reads, so that two runs differing
    only there are one run (Levi-Hassner under --weights=none and the default imagenet):
    a backbone's weights, head and regularizers for Levi-Hassner, Levi-Hassner's weight
    decay for a backbone, the fine-tuning schedule for a backbone that is not fine-tuned.
    Only what the fingerprint shows: a study searching --arch or --weights compares all.
    With --age_balance 0, its cap (not when the fingerprint has no age_balance: a study
    searching it compares the cap)."""
    balanced = settings.get("age_balance", True)
    return _unused_by_arch(settings) | (set() if balanced else {"age_balance_cap"})


def _unused_by_arch(settings):
    fine_tuning = {"head_steps", "fine_tune_layers", "fine_tune_lr_factor"}
    arch = settings.get("arch")
    if arch not in architectures.ARCHITECTURES:
        return set()
    if not architectures.is_transfer(arch):
        return fine_tuning | {"weights", "head_units", "l1", "l2"} | ({"weight_decay"} if arch == "tiny" else set())
    if "weights" not in settings:
        return {"weight_decay"}
    if settings["weights"] == "none":
        return fine_tuning | {"weight_decay"}
    if settings.get("fine_tune_layers") == 0:
        return {"head_steps", "fine_tune_lr_factor", "weight_decay"}  # Frozen throughout.
    return {"weight_decay"}


def fingerprint(data_cfg, model_cfg, train_cfg):
    """{setting: value} of every config field a run's result depends on, as JSON holds
    them: the heads as resolved (heads), the precision as resolved on this machine
    (precision), and the shard set's manifest sha256 (SHARDS). Settings the architecture
    never reads are recorded too, and not compared (unused)."""
    settings = {name: value for cfg in (data_cfg, model_cfg, train_cfg)
                for name, value in dataclasses.asdict(cfg).items() if name not in NOT_IN_FINGERPRINT}
    settings.update(heads=list(data_cfg.head_names), precision=runtime.choose_precision(train_cfg.mixed_precision))
    settings[SHARDS] = manifest_sha256(data_cfg.shards_dir)
    return json.loads(json.dumps(settings))  # Tuples become lists, as config.json reads back.


def recorded(model_dir):
    """The fingerprint config.json records for the run in `model_dir`: None when the
    folder holds no run (no checkpoint, no metrics.json), {} when it holds one without a
    fingerprint (written by an older version)."""
    if not any(os.path.exists(os.path.join(model_dir, name)) for name in _RUN_FILES):
        return None
    try:
        with open(os.path.join(model_dir, "config.json")) as f:
            return json.load(f).get("fingerprint", {})
    except (OSError, ValueError):
        return {}


def write_whole(path, value):
    """Writes `value` as JSON to `path` whole or not at all (a temporary file, synced, then
    renamed over it): a reader never sees half a file, and a run killed while writing keeps
    the file it had. config.json and metrics.json are what reruns and the experiment
    drivers read; another worker reads config.json while the chief writes it."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def record(model_dir, config):
    """Writes config.json, which holds config["fingerprint"] (write_whole)."""
    write_whole(os.path.join(model_dir, "config.json"), config)


# What a run recorded before a setting existed did, where the setting's default is not
# the old behaviour: --age_balance had no cap.
BEFORE_IT_EXISTED = {"age_balance_cap": 0.0}


def defaults():
    """{setting: what a run recorded before it existed did, as JSON holds it} of every
    config field: its default, since a new setting's default keeps the old behaviour, but
    for BEFORE_IT_EXISTED."""
    from architectures.config import ModelConfig
    from input_pipeline.config import DataConfig
    from training.config import TrainConfig

    return json.loads(json.dumps({**{f.name: f.default for cls in (DataConfig, ModelConfig, TrainConfig)
                                     for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING},
                                  **BEFORE_IT_EXISTED}))


def differences(found, wanted, ignore=()):
    """"--name: X there, Y now" for each setting on which two fingerprints differ (but
    `ignore`, and those neither run reads); a run of an older version (no fingerprint) in
    one line. A setting the recorded run has no entry for (added since) counts as its
    default there."""
    if not found:
        return ["its config.json has no fingerprint (an older version wrote it), so its settings are not known"]
    out = []
    default = defaults()
    # What the recorded run did where it predates a setting this run has (a study's fixed
    # settings lack the searched ones on both sides: those stay out).
    found = {**{k: default[k] for k in wanted.keys() - found.keys() if k in default}, **found}
    for name in sorted((found.keys() | wanted.keys()) - set(ignore) - (unused(found) & unused(wanted))):
        there, now = found[name] if name in found else "not recorded", wanted.get(name, "not recorded")
        if there != now:
            label = {SHARDS: "the shard set (its manifest.json)",
                     "precision": "the precision (--mixed_precision as resolved)"}.get(name, f"--{name}")
            out.append(f"{label}: {there!r} there, {now!r} now")
    return out


def check(model_dir, wanted):
    """Refuses (RunError) to resume the run in `model_dir` with settings other than the
    ones it was trained with; nothing to check when the folder holds no run yet."""
    found = recorded(model_dir)
    changed = differences(found, wanted) if found is not None else []
    if changed:
        raise RunError(f"{model_dir} holds a run trained with other settings ({'; '.join(changed)}); resuming it "
                       f"would mix two trainings. Pass another --model_dir, or delete {model_dir} to train anew")


def reusable(model_dir, wanted, retrain):
    """For an experiment driver: True when `model_dir` holds a finished run (metrics.json)
    of exactly these settings. A run of other settings is deleted when `retrain` (and
    False returned), else refused with a RunError that names the settings and --retrain."""
    found = recorded(model_dir)
    if found is None:
        return False
    changed = differences(found, wanted)
    if not changed:
        return os.path.isfile(os.path.join(model_dir, "metrics.json"))
    if not retrain:
        raise RunError(f"{model_dir} holds a run of other settings ({'; '.join(changed)}): its figures are not "
                       "this command's. Pass --retrain to train it again with these settings, or another output "
                       "folder")
    discard(model_dir, changed)
    return False


def discard(model_dir, changed):
    """Deletes the run of other settings (`changed`) in `model_dir`, to train it again. Not
    on the workers of a multi-worker run: each would delete the folder while another writes
    its new run there."""
    if len(sum(json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {}).values(), [])) > 1:
        raise RunError(f"{model_dir} holds a run of other settings ({'; '.join(changed)}), and the workers of a "
                       f"multi-worker run cannot delete it safely together (--retrain): delete {model_dir} "
                       "yourself, then run the same command on every worker")
    logging.warning("%s: trained with other settings (%s): training it again", model_dir, "; ".join(changed))
    shutil.rmtree(model_dir)
