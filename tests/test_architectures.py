import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import architectures
from architectures import batch_norm, compact, levi_hassner, transfer
from architectures.config import ModelConfig

HEADS = {"age": 8, "gender": 2}


def test_levi_hassner_sizes_at_227():
    model = levi_hassner.build(ModelConfig(), HEADS, 227)
    assert model.get_layer("conv1").output.shape == (None, 56, 56, 96)
    assert model.get_layer("pool1").output.shape == (None, 28, 28, 96)
    assert model.get_layer("pool2").output.shape == (None, 14, 14, 256)
    assert model.get_layer("pool5").output.shape == (None, 7, 7, 384)
    assert model.get_layer("fc6").units == 512 and model.get_layer("fc7").units == 512


def test_levi_hassner_initialisation():
    model = levi_hassner.build(ModelConfig(), HEADS, 64)
    biases = {name: float(np.unique(model.get_layer(name).bias.numpy())[0])
              for name in ("conv1", "conv2", "conv3", "fc6", "fc7", "fc8_age")}
    assert biases == {"conv1": 0.0, "conv2": 1.0, "conv3": 0.0, "fc6": 1.0, "fc7": 1.0, "fc8_age": 0.0}
    assert abs(np.std(model.get_layer("conv2").kernel.numpy()) - 0.01) < 0.001
    assert abs(np.std(model.get_layer("fc6").kernel.numpy()) - 0.005) < 0.0005


def test_lrn_matches_caffe():
    """Caffe: x / (1 + alpha / n * sum of x^2 over n = 5 channels) ^ beta, alpha 1e-4, beta 0.75."""
    x = np.random.default_rng(0).uniform(0, 40, size=(1, 2, 2, 9)).astype(np.float32)
    squares = np.pad(x ** 2, [(0, 0), (0, 0), (0, 0), (2, 2)])
    window = sum(squares[..., i:i + 9] for i in range(5))
    expected = x / (1 + 1e-4 / 5 * window) ** 0.75
    got = levi_hassner.LocalResponseNorm()(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert levi_hassner.LRN == dict(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)


def grads_of(model, size):
    images = tf.random.uniform((2, size, size, 3), 0, 255, seed=1)
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = sum(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros(2, tf.int32), v))
                   for v in logits.values())
    return logits, tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("arch", sorted(architectures.ARCHITECTURES))
def test_every_architecture_gives_logits_and_gradients(arch):
    size = 32
    model = architectures.build(ModelConfig(arch=arch, weights="none"), HEADS, size)
    logits, grads = grads_of(model, size)
    assert {k: tuple(v.shape) for k, v in logits.items()} == {"age": (2, 8), "gender": (2, 2)}
    assert all(v.dtype == tf.float32 and bool(tf.reduce_all(tf.math.is_finite(v))) for v in logits.values())
    assert model.trainable_variables
    missing = [v.path for v, g in zip(model.trainable_variables, grads, strict=True) if g is None]
    assert not missing, missing


def backbone_file(arch, folder):
    """A backbone weights file, as a user without network would pass to --weights."""
    path = os.path.join(folder, f"{arch}.weights.h5")
    architectures.build(ModelConfig(arch=arch, weights="none"), HEADS, 32).get_layer(
        transfer.BACKBONE).save_weights(path)
    return path


@pytest.mark.parametrize("arch", ["vgg16", "mobilenetv2"])
def test_a_pretrained_backbone_gets_no_gradient_until_fine_tuned(arch, tmp_path):
    model = architectures.build(ModelConfig(arch=arch, weights=backbone_file(arch, tmp_path)), HEADS, 32)
    assert architectures.freezes_backbone(ModelConfig(arch=arch, weights="imagenet"))
    backbone = model.get_layer(transfer.BACKBONE)
    backbone_ids = {id(v) for v in backbone.weights}
    assert not {id(v) for v in model.trainable_variables} & backbone_ids
    transfer.set_trainable(model, 6)
    tuned = [v for v in model.trainable_variables if id(v) in backbone_ids]
    assert tuned
    _, grads = grads_of(model, 32)
    assert all(g is not None for g in grads)
    bn = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(not layer.trainable for layer in bn)


@pytest.mark.parametrize("arch", ["mobilenetv2", "resnet50"])
def test_from_scratch_every_layer_trains_and_batchnorm_learns_its_statistics(arch):
    cfg = ModelConfig(arch=arch, weights="none")
    model = architectures.build(cfg, HEADS, 32)
    assert not architectures.freezes_backbone(cfg)
    backbone = model.get_layer(transfer.BACKBONE)
    backbone_ids = {id(v) for v in backbone.trainable_weights}
    assert backbone_ids and backbone_ids <= {id(v) for v in model.trainable_variables}
    _, grads = grads_of(model, 32)
    assert all(g is not None for g in grads)
    bn = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))
    before = bn.moving_mean.numpy().copy()
    model(tf.random.uniform((4, 32, 32, 3), 0, 255, seed=2), training=True)
    assert not np.array_equal(bn.moving_mean.numpy(), before)  # Training mode: the statistics move.


def test_weights_from_a_local_file(tmp_path):
    cfg = ModelConfig(arch="mobilenetv2", weights="none")
    source = architectures.build(cfg, HEADS, 32).get_layer(transfer.BACKBONE)
    path = str(tmp_path / "backbone.weights.h5")
    source.save_weights(path)
    loaded = architectures.build(ModelConfig(arch="mobilenetv2", weights=path), HEADS, 32)
    for a, b in zip(source.weights, loaded.get_layer(transfer.BACKBONE).weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("arch", sorted(transfer.BACKBONES))
def test_a_weights_file_builds_the_graph_imagenet_weights_build(arch, tmp_path, monkeypatch):
    """keras.applications builds EfficientNet's stem with a Rescaling by 1/sqrt(ImageNet's
    stddev) only when weights == "imagenet": built with weights=None and loaded from a file,
    the frozen ImageNet features saw inputs at about 0.48x their training scale."""
    keras.utils.set_random_seed(0)
    constructor = transfer.BACKBONES[arch].constructor
    path = str(tmp_path / f"{arch}.weights.h5")  # Stand-in ImageNet weights (no download here).
    constructor(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    from keras.src.utils import file_utils

    # Keras's own weights="imagenet" graph, handed the file where it would download one.
    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: path)
    imagenet = constructor(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    monkeypatch.undo()
    from_file = architectures.build(ModelConfig(arch=arch, weights=path), HEADS, 32).get_layer(
        transfer.BACKBONE)
    assert [type(layer).__name__ for layer in from_file.layers] == [type(layer).__name__ for layer in imagenet.layers]
    for a, b in zip(imagenet.weights, from_file.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    images = tf.random.uniform((2, 32, 32, 3), 0, 255, seed=1)
    np.testing.assert_allclose(from_file(images).numpy(), imagenet(images).numpy(), rtol=1e-4, atol=1e-4)


def test_kerass_own_imagenet_file_format_loads_into_the_imagenet_stem(tmp_path):
    """Keras's ImageNet files (efficientnetb0_notop.h5) are in the legacy HDF5 format; the
    stem divides the normalised input by sqrt(ImageNet's stddev), as weights="imagenet" does."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path / "efficientnetb0_notop.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    backbone = architectures.build(ModelConfig(arch="efficientnetb0", weights=path), HEADS, 32).get_layer(
        transfer.BACKBONE)
    for a, b in zip(source.weights, backbone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    names = [type(layer).__name__ for layer in backbone.layers]
    after = backbone.layers[names.index("Normalization") + 1]
    assert isinstance(after, keras.layers.Rescaling)
    np.testing.assert_allclose(after.scale, [1 / np.sqrt(s) for s in (0.229, 0.224, 0.225)], rtol=1e-6)


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--weights=.*nothing.h5: no such file"):
        architectures.build(ModelConfig(arch="mobilenetv2", weights=str(tmp_path / "nothing.h5")), HEADS, 32)


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown arch"):
        architectures.build(ModelConfig(arch="alexnet"), HEADS, 227)


@pytest.mark.parametrize("size,side", [(112, 7), (64, 4)])
def test_compact_sizes_and_cost(size, side):
    model = architectures.build(ModelConfig(arch="compact"), {"age": 12, "gender": 2, "age_years": 101}, size)
    assert model.get_layer("stem_relu2").output.shape == (None, size // 2, size // 2, compact.STEM)
    assert model.get_layer("stage3_block2_out").output.shape == (None, side, side, compact.WIDTHS[-1])
    assert {k: tuple(v.shape) for k, v in model.output.items()} == {"age": (None, 12), "gender": (None, 2),
                                                                    "age_years": (None, 101)}
    assert 2.5e6 < model.count_params() < 3.2e6


def test_compact_blocks_start_as_the_identity_and_batchnorm_learns():
    """Zero-gamma: at initialisation a block's output is its shortcut, rectified."""
    model = architectures.build(ModelConfig(arch="compact", dropout=0.0), HEADS, 32)
    images = tf.random.uniform((4, 32, 32, 3), 0, 255, seed=2)
    probe = keras.Model(model.input, [model.get_layer("stage1_block2_add").input[0],
                                      model.get_layer("stage1_block2_out").output])
    shortcut, out = probe(images, training=False)
    np.testing.assert_allclose(out.numpy(), np.maximum(shortcut.numpy(), 0), atol=1e-6)
    bn = model.get_layer("stem_bn1")
    before = bn.moving_mean.numpy().copy()
    model(images, training=True)
    assert not np.allclose(bn.moving_mean.numpy(), before)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_fused_batch_norm_trains_as_keras_does(policy):
    """The fused training step gives Keras's outputs, moving statistics (biased variance)
    and gradients; inference is Keras's own path."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        layers = [keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5), batch_norm.BatchNorm(momentum=0.9,
                                                                                                   epsilon=1e-5)]
        x = tf.random.normal((8, 6, 6, 5), 3.0, 2.0, seed=1)
        gamma = tf.random.uniform((5,), 0.5, 1.5, seed=2)
        weights = tf.random.normal(x.shape, seed=3)  # Not sum(y^2): BN makes that constant in x.
        results = []
        for layer in layers:
            layer.build(x.shape)
            layer.gamma.assign(gamma)
            inputs = tf.cast(x, layer.compute_dtype)
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                y = layer(inputs, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
            grads = tape.gradient(loss, [inputs, layer.gamma])
            results.append((y, grads, layer.moving_mean.numpy(), layer.moving_variance.numpy(), layer(inputs)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    (y0, g0, mean0, var0, inf0), (y1, g1, mean1, var1, inf1) = results
    assert y1.dtype == y0.dtype == policy.replace("mixed_", "")
    tol = 1e-4 if policy == "float32" else 2e-2
    np.testing.assert_allclose(tf.cast(y1, tf.float32), tf.cast(y0, tf.float32), atol=tol)
    np.testing.assert_allclose(mean1, mean0, rtol=1e-5)
    np.testing.assert_allclose(var1, var0, rtol=1e-5)  # The biased variance, not the kernel's corrected one.
    assert not np.allclose(var1, 0.9 + 0.1 * np.var(x.numpy(), axis=(0, 1, 2), ddof=1), rtol=1e-5)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(b, tf.float32), rtol=tol, atol=tol)
    np.testing.assert_allclose(tf.cast(inf1, tf.float32), tf.cast(inf0, tf.float32), atol=tol)


def test_compact_uses_the_fused_batch_norm_and_loads_keras_checkpoints(tmp_path):
    """The compact net's norms are the fused class; a checkpoint of a Keras-BN twin (as
    written before the change) restores into it, every variable, with the same outputs."""
    model = architectures.build(ModelConfig(arch="compact"), HEADS, 32)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is batch_norm.BatchNorm for layer in norms)
    twin = compact.build(ModelConfig(arch="compact"), HEADS, 32, norm_layer=keras.layers.BatchNormalization)
    images = tf.random.uniform((4, 32, 32, 3), 0, 255, seed=3)
    twin(images, training=True)  # Moving statistics away from their initial values.
    path = tf.train.Checkpoint(model=twin).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=model).read(path).assert_consumed()
    for task in HEADS:
        np.testing.assert_allclose(model(images)[task], twin(images)[task], atol=1e-5)
