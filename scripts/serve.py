"""A small web page to try a model: upload a photo, see each face's age group and gender.

    python scripts/serve.py --model=runs/demo/export        # then open http://127.0.0.1:8000

Serves on 127.0.0.1 by default (--host=0.0.0.0 to share it on a network). One page, no
external assets, works offline. Uploads over --max_upload_mb, files that are not images
and photos without a face get a clear message. --model, --no_detect and --oversample
mean what they mean for predict.py.
"""

from absl import app, flags

from serving import faces, web
from serving.predictor import Predictor

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_bool("no_detect", False, "Take each upload as one face instead of finding faces with OpenCV.")
flags.DEFINE_bool("oversample", False, "Average the 10 crops (corners, centre, mirrors) as the paper does.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
flags.DEFINE_integer("port", 8000, "Port to listen on.")
flags.DEFINE_integer("max_upload_mb", 10, "Largest upload accepted, MiB.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        predictor = Predictor(FLAGS.model)
    except (OSError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    detector = None if FLAGS.no_detect else faces.Detector()
    flask_app = web.make_app(predictor, detector, FLAGS.oversample, FLAGS.max_upload_mb, FLAGS.model)
    print(f"serving {FLAGS.model} on http://{FLAGS.host}:{FLAGS.port}")
    flask_app.run(host=FLAGS.host, port=FLAGS.port)


if __name__ == "__main__":
    app.run(main)
