"""Where and how training runs: devices, tf.distribute strategy, precision, workers, logs."""

import dataclasses
import hashlib
import logging as pylogging
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from training.config import RunError


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a run trains: its strategy, the dtype policy its layers are built under, and
    this worker's role."""

    strategy: tf.distribute.Strategy
    policy: str  # The Keras dtype policy: float32, mixed_float16 or mixed_bfloat16.
    is_chief: bool  # Writes summaries, metrics and the export (worker_role).
    task_id: int

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def multi_worker(self):
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    def check_batch(self, batch_size):
        """RunError when the replicas cannot split a global batch of `batch_size` evenly."""
        if batch_size % self.replicas:
            raise RunError(f"--batch_size={batch_size} does not split evenly over the {self.replicas} replicas "
                           f"of this {type(self.strategy).__name__}: choose a multiple of {self.replicas}")


def start(cfg, seed, deterministic=False):
    """The Runtime of TrainConfig `cfg`, set up before any layer is built: logical CPU
    devices, the seeds, op determinism, the strategy, the global dtype policy.

    Initialisation, dropout and the tf.data shuffles follow `seed` in every run, so runs
    compared with each other (tuning trials, CV folds) start alike. Op-level determinism
    costs speed and stays behind `deterministic` (--deterministic)."""
    split_cpu(cfg.cpu_devices)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = choose_strategy(cfg.distribution)
    if warning := accelerator_warning(cfg.expect_gpu, cfg.distribution, cfg.cpu_devices):
        logging.warning("%s", warning)
    policy = choose_precision(cfg.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    return Runtime(strategy, policy, *worker_role(strategy))


def split_cpu(num_devices):
    """Makes the CPU appear as `num_devices` logical devices (before TF uses any device)."""
    if num_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


def choose_strategy(name):
    if name == "multi_worker":
        # Configured from TF_CONFIG; created before anything else touches the runtime.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    # mirrored. Without GPUs MirroredStrategy would use /cpu:0 only; name every logical CPU.
    devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def accelerator_warning(expect_gpu, distribution, cpu_devices):
    """One line for a run meant for a GPU (--expect_gpu, or --distribution=mirrored on
    the one real CPU device) that finds none; "" otherwise. `pip install -e .` installs
    TensorFlow without its CUDA libraries, and TensorFlow then trains on the CPU without
    a word."""
    if tf.config.list_physical_devices("GPU") or not (expect_gpu or (distribution == "mirrored" and cpu_devices == 1)):
        return ""
    why = "--expect_gpu (the preset is meant for a GPU)" if expect_gpu else "--distribution=mirrored"
    return (f"no GPU found, though {why}: this run trains on the CPU, many times slower. TensorFlow sees no GPU "
            "when installed without its CUDA libraries: pip install -e '.[gpu]' (README, set-up)")


def worker_role(strategy):
    """(is_chief, task_id). Under MultiWorkerMirroredStrategy only the chief (task 0 of
    "worker" unless there is a "chief" task) writes summaries, metrics and the export;
    every worker must take part in saving checkpoints, so the others save into
    temporary folders that they delete again (TF's multi-worker guide)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().jobs:
        return True, 0
    return strategy.extended.should_checkpoint, resolver.task_id


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    except OSError:
        return False
    return any(flag in cpuinfo.split() for flag in ("avx512_bf16", "amx_bf16"))


def choose_precision(name):
    """The Keras dtype policy name for --mixed_precision."""
    if name == "auto":
        if tf.config.list_physical_devices("GPU"):
            return "mixed_float16"
        return "mixed_bfloat16" if cpu_has_bf16() else "float32"
    return "float32" if name == "off" else name


def fingerprint(model):
    """A short hash of the model's weights: workers in sync print the same one."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def check_workers_agree(strategy, start_step):
    """Every worker must resume from the same checkpoint; a worker that cannot see the
    chief's model_dir would silently train other weights."""
    def own_step():
        return tf.constant([start_step], tf.int64)

    @tf.function
    def gather():
        return strategy.gather(strategy.run(own_step), axis=0)

    steps = gather().numpy()
    if steps.min() != steps.max():
        raise RuntimeError(f"the workers resumed from different steps {sorted(set(steps.tolist()))}: every "
                           "worker must read the chief's --model_dir (shared storage such as NFS or gs://)")


def quiet_tensorflow_info():
    """Drops TensorFlow's own INFO lines (saver sharding, signature renames, ...) from the
    log: several per checkpoint, they bury the progress lines."""
    tf.get_logger().setLevel("WARNING")
    package = os.path.dirname(tf.__file__)
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= pylogging.WARNING or not record.pathname.startswith(package))
