"""Transfer learning: a keras.applications backbone with a small classification head.

The backbone's own `preprocess_input` runs inside the model, so the input pipeline
feeds every architecture the same float32 [0, 255] images. A pre-trained backbone
(ImageNet weights or a weights file) is frozen at first and called with training=False:
its BatchNorm layers keep their learned statistics while the head trains and while its
top layers are fine-tuned (set_trainable). With weights "none" there is nothing to keep:
the whole network trains from scratch, BatchNorm in training mode.

Pre-trained weights from a file (a machine without network) build the very graph that
weights="imagenet" builds: keras.applications' graphs depend on where the weights come
from (EfficientNet adds a Rescaling by 1/sqrt(ImageNet's stddev) after its stem's
Normalization only when weights == "imagenet"), so the file's ImageNet features would
otherwise see inputs at about half their training scale.
"""

import contextlib
import dataclasses
import os

import keras
from keras.src.utils import file_utils  # What keras.applications' constructors download with.

BACKBONE = "backbone"


@dataclasses.dataclass(frozen=True)
class Backbone:
    constructor: object
    preprocess: object


BACKBONES = {
    "vgg16": Backbone(keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
    "vgg19": Backbone(keras.applications.VGG19, keras.applications.vgg19.preprocess_input),
    "resnet50": Backbone(keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
    "efficientnetb0": Backbone(keras.applications.EfficientNetB0,
                               keras.applications.efficientnet.preprocess_input),
    "mobilenetv2": Backbone(keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input),
}


@keras.saving.register_keras_serializable(package="architectures")
class Preprocess(keras.layers.Layer):
    """A backbone's `preprocess_input` as a layer (float32, so it is exact under mixed precision)."""

    def __init__(self, backbone, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, images):
        return BACKBONES[self.backbone].preprocess(images)

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


@contextlib.contextmanager
def _imagenet_weights_from(path):
    """Within it, a keras.applications constructor called with weights="imagenet" builds
    its ImageNet graph and loads the file at `path` instead of downloading one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--weights={path}: no such file (imagenet, none, or a backbone weights file such as "
                                "Keras's own <name>_notop.h5)")
    download = file_utils.get_file
    file_utils.get_file = lambda *args, **kwargs: os.path.abspath(path)
    try:
        yield
    finally:
        file_utils.get_file = download


def build(cfg, heads, size):
    """cfg.arch names the backbone, for inputs of `size` a side; `heads` maps task -> number of classes."""
    backbone_spec = BACKBONES[cfg.arch]
    if cfg.weights == "none":
        backbone = backbone_spec.constructor(include_top=False, weights=None, input_shape=(size, size, 3))
    else:
        local = _imagenet_weights_from(cfg.weights) if cfg.weights != "imagenet" else contextlib.nullcontext()
        with local:
            backbone = backbone_spec.constructor(include_top=False, weights="imagenet", input_shape=(size, size, 3))
    backbone.name = BACKBONE

    images = keras.Input((size, size, 3), name="image")
    x = Preprocess(cfg.arch, name="preprocess")(images)
    x = backbone(x, training=False) if pretrained(cfg) else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop_features")(x)
    x = keras.layers.Dense(cfg.head_units, activation="relu", name="head",
                           kernel_regularizer=keras.regularizers.L1L2(cfg.l1, cfg.l2))(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop_head")(x)
    logits = {task: keras.layers.Dense(n, dtype="float32", name=f"logits_{task}")(x)
              for task, n in heads.items()}
    model = keras.Model(images, logits, name=f"transfer_{cfg.arch}")
    if pretrained(cfg):
        set_trainable(model, 0)
    return model


def pretrained(cfg):
    """The backbone starts from learned weights, which its training phases keep: frozen
    under the head first, then fine-tuned from the top (--head_steps, --fine_tune_layers)."""
    return cfg.weights != "none"


def set_trainable(model, fine_tune_layers):
    """Freezes the backbone except its top `fine_tune_layers` layers (0: all frozen).

    BatchNorm layers stay frozen: their moving statistics come from the pre-training.
    """
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = fine_tune_layers > 0
    if fine_tune_layers > 0:
        cut = max(len(backbone.layers) - fine_tune_layers, 0)
        for i, layer in enumerate(backbone.layers):
            layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
