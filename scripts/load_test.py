"""Load test of the web page and its JSON API on loopback: many clients, bad input mixed in.

    python scripts/load_test.py --model=runs/demo/export
    python scripts/load_test.py --model=runs/demo/export --faces_dir=../shared/realfaces_dev/images

Starts scripts/serve.py on 127.0.0.1 (a free port), then --clients threads send
--requests requests in all, a fixed mix (--seed) of: photos with a face (200), photos
without one (422), files that are not images (400), truncated JPEGs (400), a
decompression bomb (a small PNG of 400 million pixels, 400), and uploads just over and
3x over the limit (413) -- to POST /api/predict as raw bytes or multipart, and to the
HTML page. The same plan runs twice after a warm-up round: prints requests/s and p50/p95
latency per kind, and the server's memory after the warm-up and after each round (a
leak grows it round after round); exits 1 if any request got a wrong status or no
answer, or the server stops answering. Face photos are --faces_dir's images, or drawn
ones that the model's detector finds.
"""

import collections
import concurrent.futures
import io
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
from absl import app, flags
from PIL import Image

flags.DEFINE_string("model", "runs/demo/export", "The export to serve.")
flags.DEFINE_integer("clients", 32, "Concurrent clients.", lower_bound=1)
flags.DEFINE_integer("requests", 500, "Requests in all.", lower_bound=1)
flags.DEFINE_integer("threads", 4, "The server's --threads.", lower_bound=1)
flags.DEFINE_integer("max_upload_mb", 2, "The server's --max_upload_mb.", lower_bound=1)
flags.DEFINE_string("faces_dir", "", "Photos with a face; empty: drawn faces the model's detector finds.")
flags.DEFINE_integer("seed", 0, "Seed of the mix.")
flags.DEFINE_float("timeout", 120.0, "Seconds a client waits for one answer.")
FLAGS = flags.FLAGS

MIX = {"face": 0.5, "no_face": 0.15, "not_image": 0.1, "truncated": 0.1, "bomb": 0.07, "over_limit": 0.05,
       "far_over_limit": 0.03}
EXPECTED = {"face": 200, "no_face": 422, "not_image": 400, "truncated": 400, "bomb": 400, "over_limit": 413,
            "far_over_limit": 413}


def png(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def jpeg(image):
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def bomb():
    """A PNG of 20,000 x 20,000 black pixels: about 50 kB on disk, 1.2 GB decoded."""
    Image.MAX_IMAGE_PIXELS = None  # Only to write it; the server keeps its limit.
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def face_photos(model):
    if FLAGS.faces_dir:
        names = sorted(n for n in os.listdir(FLAGS.faces_dir) if n.lower().endswith((".jpg", ".jpeg", ".png")))
        return [open(os.path.join(FLAGS.faces_dir, n), "rb").read() for n in names[:40]]
    from input_pipeline import faces
    from input_pipeline.sources import synthetic_face
    from serving.predictor import Predictor

    spec = Predictor(model).crop_spec
    found = []
    for seed in range(60):
        rng = np.random.default_rng([seed, 7])
        data = jpeg(synthetic_face.draw_photo(rng, synthetic_face.make_person(rng, 4, seed % 2 == 0, 28.0), 28.0,
                                              240)[0])
        if spec is None or faces.detect(np.asarray(Image.open(io.BytesIO(data))), spec)[0]:
            found.append(data)
    if not found:
        sys.exit("load_test: the detector finds none of the drawn faces; pass --faces_dir")
    return found


def bodies(model):
    rng = np.random.default_rng(FLAGS.seed)
    limit = FLAGS.max_upload_mb << 20
    good = face_photos(model)
    return {
        "face": good,
        "no_face": [jpeg(Image.fromarray(rng.integers(80, 120, (300, 400, 3), dtype=np.uint8))),
                    png(Image.new("RGB", (640, 480), (30, 90, 160)))],
        "not_image": [b"hello, this is not a picture\n" * 40, b"%PDF-1.4 not really"],
        "truncated": [photo[: len(photo) // 2] for photo in good[:3]],
        "bomb": [bomb()],
        "over_limit": [os.urandom(limit + (256 << 10))],
        "far_over_limit": [os.urandom(3 * limit)],
    }


def send(url, kind, data, how):
    """(kind, HTTP status or an error text, seconds)."""
    if how == "raw":
        request = urllib.request.Request(f"{url}/api/predict", data=data,
                                         headers={"Content-Type": "application/octet-stream"})
    else:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{kind}.jpg\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        path = "/api/predict" if how == "multipart" else "/"
        request = urllib.request.Request(f"{url}{path}", data=body,
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=FLAGS.timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except (urllib.error.URLError, OSError) as e:
        status = f"no answer: {getattr(e, 'reason', e)}"
    return kind, status, time.perf_counter() - start


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def start_server():
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "serve.py"), f"--model={FLAGS.model}",
               "--host=127.0.0.1", "--port=0", f"--threads={FLAGS.threads}", f"--max_upload_mb={FLAGS.max_upload_mb}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    if "http://" not in line:
        server.kill()
        sys.exit(f"load_test: the server did not start: {line!r}")
    return server, line.split()[-1]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    catalogue = bodies(FLAGS.model)
    rng = random.Random(FLAGS.seed)
    plan = [(kind, rng.choice(catalogue[kind]), rng.choice(["raw", "multipart", "page"]))
            for kind in rng.choices(list(MIX), weights=list(MIX.values()), k=FLAGS.requests)]
    server, url = start_server()
    try:
        # Warm-up at full concurrency: every server thread loads what it loads lazily and the
        # allocator reaches its working size, so what follows measures steady state.
        with concurrent.futures.ThreadPoolExecutor(FLAGS.clients) as pool:
            list(pool.map(lambda p: send(url, *p), plan[:FLAGS.clients * 2]))
        memory = [rss_mb(server.pid)]
        failed = 0
        for round_number in (1, 2):
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(FLAGS.clients) as pool:
                results = list(pool.map(lambda p: send(url, *p), plan))
            seconds = time.perf_counter() - start
            time.sleep(1.0)
            memory.append(rss_mb(server.pid))
            print(f"round {round_number}:")
            failed += report(results, seconds)
        final = send(url, "face", catalogue["face"][0], "raw")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"server memory: {memory[0]:.0f} MB after warm-up, {memory[1]:.0f} MB after round 1, "
          f"{memory[2]:.0f} MB after round 2 ({memory[2] - memory[0]:+.0f} MB)")
    print(f"answered afterwards: {final[1]}")
    sys.exit(1 if failed or final[1] != 200 else 0)


def report(results, seconds):
    """Prints one round's figures; returns the number of wrong or missing answers."""
    print(f"{len(results)} requests from {FLAGS.clients} clients in {seconds:.1f}s: "
          f"{len(results) / seconds:.1f} requests/s; server {FLAGS.threads} threads")
    wrong = [(k, s) for k, s, _ in results if s != EXPECTED[k]]
    by_kind = collections.defaultdict(list)
    for kind, status, latency in results:
        by_kind[kind].append((status, latency))
    print(f"{'kind':<15}{'n':>5}{'status':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for kind in MIX:
        if by_kind[kind]:
            latencies = np.array([latency for _, latency in by_kind[kind]]) * 1000
            statuses = collections.Counter(str(s) for s, _ in by_kind[kind])
            print(f"{kind:<15}{len(latencies):>5}{'/'.join(statuses):>8}{np.percentile(latencies, 50):>9.0f}"
                  f"{np.percentile(latencies, 95):>9.0f}")
    everything = np.array([latency for _, _, latency in results]) * 1000
    print(f"{'all':<15}{len(everything):>5}{'':>8}{np.percentile(everything, 50):>9.0f}"
          f"{np.percentile(everything, 95):>9.0f}")
    worst = f" {collections.Counter(wrong).most_common(5)}" if wrong else ""
    print(f"wrong or missing answers: {len(wrong)}{worst}")
    return len(wrong)


if __name__ == "__main__":
    app.run(main)
