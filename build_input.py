"""Turns a face dataset into TFRecord shards, one shard set per fold, with a manifest.

    python build_input.py                      # the synthetic Adience-layout sample
    python build_input.py --dataset=utkface    # a synthetic UTKFace-layout sample (ages, gender, race)
    python build_input.py --dataset=csv        # a synthetic IMFDB-style CSV (ID,Class: YOUNG/MIDDLE/OLD)
    python build_input.py --data_dir=/data/adience --output_dir=data/tfrecords/adience
    python build_input.py --dataset=utkface --data_dir=/data/UTKFace
    python build_input.py --dataset=csv --data_dir=/data/faces --csv_file=/data/faces/labels.csv
    python build_input.py --dataset=csv --data_dir=/data/imfdb/Train --csv_file=/data/imfdb/train.csv \\
        --csv_columns=path=ID,age=Class --age_bins=three
    python build_input.py --dataset=utkface --data_dir=/data/UTKFace --face_crop=detect

Writes <output_dir>/fold<k>-<i>-of-<n>.tfrecord, manifest.json and skipped.csv.
"""

import os
import sys
import time

from absl import app, flags, logging

from input_pipeline import faces, labels, parallel
from input_pipeline.config import DATASETS, FACE_CROPS, BuildConfig
from input_pipeline.sources import adience, imfdb_sample, sample
from input_pipeline.sources.rows import DatasetError
from input_pipeline.writer import build, manifest

_SAMPLE = sample.SampleConfig()
# --dataset -> the synthetic sample drawn when --data_dir is empty, and its photos' default size.
SAMPLE_LAYOUTS = {"adience": ("adience", 320), "utkface": ("utkface", 200), "csv": ("imfdb", 128)}

flags.DEFINE_enum("dataset", BuildConfig.dataset, DATASETS,
                  "Input format: an Adience download, a UTKFace folder, or a CSV of paths and labels.")
flags.DEFINE_string("data_dir", "",
                    "Dataset folder. Empty: a synthetic sample in the layout of --dataset, generated in "
                    "--sample_dir on first use: Adience's fold files, UTKFace's file names (exact ages, gender, "
                    "race), or for csv an IMFDB-style train.csv (ID,Class) with Train/<ID> images.")
flags.DEFINE_string("output_dir", "",
                    "Where the shards go. Empty: data/tfrecords/<adience|utkface|csv>, or for a synthetic sample "
                    "data/tfrecords/<adience|utkface|imfdb>_sample.")
flags.DEFINE_string("csv_file", "",
                    "--dataset=csv: the CSV file (columns path, at least one of age, gender and race, optional "
                    "fold and subject_id). Empty: <data_dir>/labels.csv. Image paths are relative to --data_dir.")
flags.DEFINE_string("csv_columns", BuildConfig.csv_columns,
                    "--dataset=csv: map this project's column names to the CSV's, e.g. path=ID,age=Class (fields: "
                    "path, age, gender, race, fold, subject_id; CSV names in any case).")
flags.DEFINE_string("age_bins", BuildConfig.age_bins,
                    "Only to read bin names in a CSV's age column: a name of one of these bins (e.g. YOUNG with "
                    "three) is stored as that bin's range of years. The bins a model predicts are chosen by "
                    "model.py --age_bins. Same values: adience, three, utk12, or a list like young=13-30,...")
flags.DEFINE_enum("image_layout", BuildConfig.image_layout, sorted(adience.LAYOUTS),
                  "Adience image set: aligned/ (landmark_aligned_face.*, the paper's) or faces/ "
                  "(coarse_tilt_aligned_face.*).")
flags.DEFINE_enum("label_policy", BuildConfig.label_policy, labels.POLICIES,
                  "strict: the paper's protocol: from Adience fold files only the 8 class ranges are ages "
                  "(bare numbers and off-grid ranges are unknown), and at training an age outside every bin of "
                  "--age_bins is unknown. nearest: those values are kept too, and at training an age no bin "
                  "holds goes to the nearest bin (ranges by midpoint, ties to the younger). Ages in years "
                  "are kept under both.")
flags.DEFINE_integer("image_size", BuildConfig.image_size,
                     "Resize every face to this square size and re-encode as JPEG (256: the paper's "
                     "input). 0 stores the original JPEG bytes unchanged.", lower_bound=0)
flags.DEFINE_enum("face_crop", BuildConfig.face_crop, FACE_CROPS,
                  "none: store the dataset's own crops. detect: find the face in every image with "
                  "--detector and store its canonical crop (eyes level, scaled by the eye distance, with "
                  "a margin), the framing predict.py and the web page reproduce on new photos. Images with "
                  "no face, only faces under --min_face_size or several similar faces are skipped.")
flags.DEFINE_enum("detector", BuildConfig.detector, faces.DETECTORS,
                  "--face_crop=detect: blazeface (MediaPipe's, five landmarks, 10x as fast as mtcnn), "
                  "mtcnn (five landmarks, the same framing) or haar (OpenCV's cascade: boxes only). "
                  "blazeface and mtcnn load TensorFlow in each worker.")
flags.DEFINE_integer("min_face_size", BuildConfig.min_face_size,
                     "--face_crop=detect: faces whose box is smaller, in pixels of the image, are too "
                     "small to use.", lower_bound=1)
flags.DEFINE_integer("jpeg_quality", BuildConfig.jpeg_quality,
                     "JPEG quality of re-encoded faces (ignored with --image_size=0).",
                     lower_bound=1, upper_bound=100)
flags.DEFINE_integer("num_shards", BuildConfig.num_shards,
                     "TFRecord files per fold (real Adience at 256px: ~25 MB each).", lower_bound=1)
flags.DEFINE_integer("shuffle_seed", BuildConfig.shuffle_seed,
                     "Faces are written in a random order (not the source's, which groups them by person or "
                     "age) seeded by this: the same input and seed give the same bytes.")
flags.DEFINE_integer("num_workers", BuildConfig.num_workers,
                     "Processes that decode, resize and encode images. 0: one per CPU core.",
                     lower_bound=0)
flags.DEFINE_bool("dedup", BuildConfig.dedup,
                  "Drop exact duplicate rows (kept by default, as in the paper's fold lists); "
                  "dropped rows are listed in skipped.csv as duplicate_row.")
flags.DEFINE_bool("overwrite", BuildConfig.overwrite,
                  "Replace an existing --output_dir (only once the new one is complete).")
flags.DEFINE_string("sample_dir", "",
                    "Where the synthetic sample is generated when --data_dir is empty. Empty: "
                    "data/<adience|utkface|imfdb>_sample.")
flags.DEFINE_integer("sample_faces", _SAMPLE.num_faces, "Faces in the synthetic sample.",
                     lower_bound=sample.MIN_FACES)
flags.DEFINE_integer("sample_image_size", 0,
                     "Pixels a side of the synthetic sample's photos. 0: the layout's own (Adience 320, UTKFace "
                     "200, IMFDB 128, shrunk to 16-130 px images of many shapes).", lower_bound=0)
flags.DEFINE_integer("sample_seed", _SAMPLE.seed, "Seed of the synthetic sample.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    parallel.keep_freed_memory()  # This process encodes too when --num_workers=1.
    if FLAGS.face_crop == "detect" and FLAGS.image_size == 0:
        raise app.UsageError("--face_crop=detect stores new crops, so it needs --image_size > 0")
    try:
        data_dir, csv_file, csv_columns = FLAGS.data_dir, FLAGS.csv_file, FLAGS.csv_columns
        age_bins = FLAGS.age_bins
        layout, size = SAMPLE_LAYOUTS[FLAGS.dataset]
        if not data_dir:
            sample_dir = FLAGS.sample_dir or os.path.join("data", f"{layout}_sample")
            draw_sample(sample_dir, layout, sample.SampleConfig(FLAGS.sample_faces, FLAGS.sample_image_size or size,
                                                                FLAGS.sample_seed), FLAGS.num_workers)
            data_dir = sample_dir
            if layout == "imfdb":  # The IMFDB-style CSV: its own columns and names.
                data_dir, csv_file = (os.path.join(sample_dir, imfdb_sample.IMAGES),
                                      os.path.join(sample_dir, imfdb_sample.CSV))
                csv_columns = csv_columns or imfdb_sample.COLUMNS
                age_bins = age_bins if FLAGS["age_bins"].present else imfdb_sample.AGE_BINS
                logging.info("IMFDB-style sample: --csv_columns=%s --age_bins=%s", csv_columns, age_bins)
        # The IMFDB-style sample's images are one folder down from its marker.
        synthetic = any(sample.is_sample(d) for d in (data_dir, os.path.dirname(os.path.abspath(data_dir))))
        default_output = f"{layout}_sample" if synthetic else FLAGS.dataset
        cfg = BuildConfig(
            dataset=FLAGS.dataset, data_dir=data_dir,
            output_dir=FLAGS.output_dir or os.path.join("data", "tfrecords", default_output),
            csv_file=csv_file, csv_columns=csv_columns, age_bins=age_bins, image_layout=FLAGS.image_layout,
            label_policy=FLAGS.label_policy, image_size=FLAGS.image_size, face_crop=FLAGS.face_crop,
            detector=FLAGS.detector, min_face_size=FLAGS.min_face_size, jpeg_quality=FLAGS.jpeg_quality,
            num_shards=FLAGS.num_shards, shuffle_seed=FLAGS.shuffle_seed, num_workers=FLAGS.num_workers,
            dedup=FLAGS.dedup, overwrite=FLAGS.overwrite)
        run(cfg, synthetic)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    except DatasetError as e:
        sys.exit(f"build_input: error: {e}\nNothing was written.")
    except KeyboardInterrupt:
        print("build_input: interrupted; nothing was written (a rerun starts afresh).", file=sys.stderr)
        sys.exit(130)


def draw_sample(sample_dir, layout, sample_cfg, num_workers):
    """Draws the synthetic sample of `layout` into `sample_dir`, unless it is there already."""
    logging.warning("No --data_dir: using the SYNTHETIC %s-layout sample in %s. It is drawn by a program, not "
                    "real faces; pass --data_dir for a real dataset.", layout, sample_dir)
    sample.ensure(sample_dir, sample_cfg, num_workers, layout)


def run(cfg, synthetic):
    logging.info("%s", cfg)
    start = time.monotonic()
    written = build.build(cfg, synthetic=synthetic)
    print(manifest.summary(written, cfg.output_dir, time.monotonic() - start))
    if synthetic:
        print("note: these shards hold a SYNTHETIC sample drawn by a program, not real faces.")


if __name__ == "__main__":
    app.run(main)
