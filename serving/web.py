"""The upload page: one photo in, the photo with its faces boxed and a row per face out.

One Flask page with inline CSS and the annotated photo inline as a data: URI, so nothing
is fetched from elsewhere and it works offline (scripts/serve.py runs it).
"""

import base64
import html
import io

import flask

from serving import annotate, photos
from serving.predictor import classify

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Age and gender</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
 form {{ margin: 1rem 0; padding: 1rem; background: #f3f4f8; border-radius: .5rem; }}
 .error {{ color: #a40000; background: #fdecec; padding: .6rem 1rem; border-radius: .4rem; }}
 img {{ max-width: 100%; border-radius: .4rem; margin-top: 1rem; }}
 table {{ border-collapse: collapse; margin-top: 1rem; }}
 td, th {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }}
 .note {{ color: #666; font-size: .9rem; }}
</style></head><body>
<h1>Age and gender</h1>
<form method="post" action="/" enctype="multipart/form-data">
 <input type="file" name="photo" accept="image/*" id="photo">
 <button type="submit" id="submit">Predict</button>
 <div class="note">Up to {max_mb} MB. The photo stays on this machine.</div>
</form>
{body}
<p class="note">Model: {model}</p>
</body></html>"""


def result_html(image, rows):
    """The annotated photo inline (a data: URI, nothing external) and a row per face."""
    out = io.BytesIO()
    annotate.annotate(image, rows).save(out, format="PNG")
    picture = base64.b64encode(out.getvalue()).decode()
    lines = ["<table id='faces'><tr><th>face</th><th>age group</th><th>probability</th><th>next</th>"
             "<th>gender</th><th>probability</th></tr>"]
    for row in rows:
        cells = (row["face"] + 1, row["age"], _percent(row["age_probability"]),
                 f"{row['next_age']} {_percent(row['next_age_probability'])}".strip(), row["gender"],
                 _percent(row["gender_probability"]))
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines) + f"\n<img alt='your photo with the faces boxed' src='data:image/png;base64,{picture}'>"


def _percent(value):
    return f"{100 * value:.0f}%" if value != "" else ""


def make_app(predictor, detector, oversample, max_upload_mb, model_name):
    """The Flask app of the page: GET / shows the form, POST / a photo's faces."""
    flask_app = flask.Flask(__name__)
    flask_app.config["MAX_CONTENT_LENGTH"] = max_upload_mb << 20

    def page(body, status=200):
        text = PAGE.format(body=body, max_mb=max_upload_mb, model=html.escape(model_name))
        return flask.Response(text, status=status, mimetype="text/html")

    def error(message, status):
        return page(f"<p class='error' id='error'>{html.escape(message)}</p>", status)

    @flask_app.get("/")
    def index():
        return page("")

    @flask_app.post("/")
    def upload():
        photo = flask.request.files.get("photo")
        if photo is None or not photo.filename:
            return error("Choose a photo first.", 400)
        try:
            image = photos.decode(photo.read())
        except photos.PhotoError as e:
            return error(f"{photo.filename}: {e}.", 400)
        rows = classify(image, photo.filename, predictor, detector, oversample)
        if not rows:
            return error(f"{photo.filename}: no face found. Try a photo where a face is clearly visible.", 422)
        return page(result_html(image, rows))

    @flask_app.errorhandler(413)
    def too_large(_):
        return error(f"That file is larger than {max_upload_mb} MB.", 413)

    return flask_app
