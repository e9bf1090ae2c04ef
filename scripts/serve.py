"""A web page and a JSON API to try a model: upload a photo, get each face's predictions.

    python scripts/serve.py --model=runs/demo/export        # then open http://127.0.0.1:8000
    curl -F photo=@face.jpg http://127.0.0.1:8000/api/predict
    curl --data-binary @face.jpg http://127.0.0.1:8000/api/predict

Served by waitress (a production WSGI server) with --threads worker threads sharing one
loaded model, on 127.0.0.1 by default (--host=0.0.0.0 to share it on a network). One
page, no external assets, works offline. Uploads over --max_upload_mb, pictures over
--max_megapixels (decompression bombs), files that are not images and photos without a
face get a clear message (HTML on the page, {"error": ...} from the API) and the right
HTTP status. --model, --detector, --no_detect, --min_face_size, --oversample and --min_confidence mean
what they mean for predict.py.
"""

import waitress
from absl import app, flags, logging

from input_pipeline import faces
from serving import web
from serving.predictor import Predictor

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_enum("detector", "auto", ["auto", *faces.DETECTORS],
                  "Face detector. auto: the one the model's training faces were cropped with.")
flags.DEFINE_bool("no_detect", False, "Take each upload as one face instead of finding faces.")
flags.DEFINE_integer("min_face_size", 0, "Faces whose box is smaller, in pixels, are reported as too small; "
                     "0: the model's own.", lower_bound=0)
flags.DEFINE_bool("oversample", False, "Average the 10 crops (corners, centre, mirrors) as the paper does.")
flags.DEFINE_string("min_confidence", "", "Mark a head's answer \"unsure\" (a field of each API record, a "
                    "column of the page's table, a \"?\" on its photo) when its probability is below this: one "
                    "number for every head (0.6), or per head (age=0.3,gender=0.8; a bare number then covers the "
                    "others). The export's probabilities are calibrated on its validation faces (single crop): "
                    "answers given with about 0.8 were right about 8 times in 10 there. Empty or 0: never.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
flags.DEFINE_integer("port", 8000, "Port to listen on; 0: any free port (printed).", lower_bound=0)
flags.DEFINE_integer("threads", 4, "Requests handled at once (waitress worker threads).", lower_bound=1)
flags.DEFINE_integer("max_upload_mb", 10, "Largest upload accepted, MiB.", lower_bound=1)
flags.DEFINE_integer("max_megapixels", 40, "Largest picture accepted, millions of pixels.", lower_bound=1)
FLAGS = flags.FLAGS

BODY_CAP = 16


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        predictor = Predictor(FLAGS.model, None if FLAGS.no_detect else FLAGS.detector, FLAGS.oversample,
                              min_face_size=FLAGS.min_face_size, max_pixels=FLAGS.max_megapixels * 10**6,
                              min_confidence=FLAGS.min_confidence)
    except (OSError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    flask_app = web.make_app(predictor, FLAGS.max_upload_mb, FLAGS.model)
    # Waitress reads a body in full (spooling a large one to a temporary file) before the
    # app sees it, so an upload over the limit gets the page's (or the API's JSON) 413.
    # Past BODY_CAP times the limit waitress itself answers 413 and closes the connection
    # while the client may still be sending, which some clients report as a reset.
    server = waitress.create_server(flask_app, host=FLAGS.host, port=FLAGS.port, threads=FLAGS.threads,
                                    max_request_body_size=BODY_CAP * (FLAGS.max_upload_mb << 20),
                                    ident="adience-age-gender")
    logging.info("%d waitress threads", FLAGS.threads)
    # --port=0 takes a free port; this line tells which (scripts/load_test.py reads it).
    print(f"serving {FLAGS.model} on http://{FLAGS.host}:{server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    app.run(main)
