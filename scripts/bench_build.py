"""Benchmarks build_input's decode/resize/encode stage: 1 worker vs all cores, in one run.

    python scripts/bench_build.py                 # ~1 min on 2 cores, the first run ~40 s more

Draws --faces synthetic faces at --source_size pixels (816: the size of Adience's
aligned faces) once, into data/bench_faces_<size>, and lists each --repeat times in a
CSV so the run is long enough to time (every row is still read, decoded, resized and
encoded). Builds the same shards with 1 worker (this process, with build_input's malloc
settings) and with one per core, checks that the
outputs are byte-identical, measures the peak memory of a whole build_input run on a
quarter of the rows and on all of them (it should not grow with the dataset), and
prints `speedup: X.XX` last.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from input_pipeline import parallel
from input_pipeline.config import BuildConfig
from input_pipeline.sources import adience, sample
from input_pipeline.writer import build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_integer("faces", 300, "Distinct synthetic faces to draw.", lower_bound=sample.MIN_FACES)
flags.DEFINE_integer("source_size", 816, "Pixels a side of the drawn faces (Adience aligned: 816).")
flags.DEFINE_integer("repeat", 8, "Times each face is listed in the benchmark's CSV.", lower_bound=1)
flags.DEFINE_integer("image_size", BuildConfig.image_size, "build_input --image_size.")
flags.DEFINE_integer("workers", 0, "Workers of the parallel run; 0: one per core.")
flags.DEFINE_string("work_dir", "", "Scratch folder for the shards; empty: a temporary one.")
FLAGS = flags.FLAGS


def write_csv(path, faces, repeat, limit=None):
    lines = ["path,age,gender,fold,subject_id"]
    for _ in range(repeat):
        for face in faces:
            age = "" if face.age[0] < 0 else f'"({face.age[0]}, {face.age[1]})"'
            gender = "" if face.gender < 0 else "mf"[face.gender]
            lines.append(f"{face.path},{age},{gender},{face.fold},{face.subject_id}")
    lines = lines[:limit + 1] if limit else lines
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 1


def timed_build(build, cfg):
    start = time.perf_counter()
    manifest = build.build(cfg)
    return manifest, time.perf_counter() - start


def peak_rss_mib(command):
    """Peak resident memory of `command` and the processes it waited for, in MiB."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    return usage.ru_maxrss / 1024


def same_files(a, b):
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    for name in names:
        with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
            if fa.read() != fb.read():
                return False
    return True


def main(argv):
    del argv
    parallel.keep_freed_memory()  # As build_input.py does: one worker encodes in this process.
    workers = parallel.resolve_workers(FLAGS.workers)
    faces_dir = os.path.join(ROOT, "data", f"bench_faces_{FLAGS.source_size}")
    cfg = sample.SampleConfig(num_faces=FLAGS.faces, image_size=FLAGS.source_size)
    if sample.ensure(faces_dir, cfg, num_workers=0):
        print(f"drew {FLAGS.faces} faces at {FLAGS.source_size}px into {faces_dir}")
    faces = adience.read(faces_dir).faces
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_build_")
    try:
        csv_all = os.path.join(work, "all.csv")
        rows = write_csv(csv_all, faces, FLAGS.repeat)
        common = dict(dataset="csv", data_dir=faces_dir, image_size=FLAGS.image_size, overwrite=True)
        one, t_one = timed_build(build, BuildConfig(**common, csv_file=csv_all, num_workers=1,
                                                    output_dir=os.path.join(work, "one")))
        many, t_many = timed_build(build, BuildConfig(**common, csv_file=csv_all, num_workers=workers,
                                                      output_dir=os.path.join(work, "many")))
        identical = same_files(os.path.join(work, "one"), os.path.join(work, "many"))

        csv_quarter = os.path.join(work, "quarter.csv")
        quarter = write_csv(csv_quarter, faces, FLAGS.repeat, limit=rows // 4)
        command = [sys.executable, os.path.join(ROOT, "build_input.py"), "--dataset=csv",
                   f"--data_dir={faces_dir}", f"--image_size={FLAGS.image_size}", "--overwrite",
                   f"--num_workers={workers}", f"--output_dir={os.path.join(work, 'rss')}"]
        rss_quarter = peak_rss_mib(command + [f"--csv_file={csv_quarter}"])
        rss_all = peak_rss_mib(command + [f"--csv_file={csv_all}"])
    finally:
        if not FLAGS.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    n = one["num_examples"]
    print(f"bench_build: {rows} rows ({len(faces)} distinct faces) of {FLAGS.source_size}px JPEG "
          f"-> {FLAGS.image_size}px JPEG, {os.cpu_count()} cores")
    print(f"1 worker:   {n} images in {t_one:.2f}s = {n / t_one:.1f} images/s")
    print(f"{workers} workers:  {many['num_examples']} images in {t_many:.2f}s = "
          f"{many['num_examples'] / t_many:.1f} images/s")
    print(f"outputs byte-identical: {'yes' if identical else 'NO'}")
    print(f"peak RSS of build_input ({workers} workers): {quarter} rows {rss_quarter:.0f} MiB, "
          f"{rows} rows {rss_all:.0f} MiB")
    print(f"speedup: {t_one / t_many:.2f}")


if __name__ == "__main__":
    app.run(main)
