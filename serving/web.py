"""The upload page and its JSON twin: one photo in, a record per face out.

    GET  /              the form
    POST /              a photo (multipart field "photo") -> the page with the photo, its
                        faces boxed, and a row per face
    POST /api/predict   a photo as multipart field "photo" or as the raw request body ->
                        {"input": name, "faces": [records]} (serving/report.py), the
                        records Predictor.predict returns; errors as {"error": message}

Both run the same function (`answer`). One Flask app with inline CSS and the annotated
photo inline as a data: URI, so nothing is fetched from elsewhere and it works offline;
scripts/serve.py serves it with waitress, a production WSGI server.
"""

import base64
import html
import io

import flask

from serving import annotate, report
from serving.predictor import NO_FACE

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Age and gender</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
 form {{ margin: 1rem 0; padding: 1rem; background: #f3f4f8; border-radius: .5rem; }}
 .unsure {{ color: #8a5a00; background: #fff4d6; font-weight: bold; }}
 .error {{ color: #a40000; background: #fdecec; padding: .6rem 1rem; border-radius: .4rem; }}
 img {{ max-width: 100%; border-radius: .4rem; margin-top: 1rem; }}
 .faces {{ overflow-x: auto; margin-top: 1rem; }}
 table {{ border-collapse: collapse; font-size: .9rem; }}
 td, th {{ padding: .3rem .45rem; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }}
 .note {{ color: #666; font-size: .9rem; }}
 .warning {{ color: #6b4a00; background: #fff4d6; padding: .6rem 1rem; border-radius: .4rem; }}
</style></head><body>
<h1>Age and gender</h1>
<form method="post" action="/" enctype="multipart/form-data">
 <input type="file" name="photo" accept="image/*" id="photo">
 <button type="submit" id="submit">Predict</button>
 <div class="note">Up to {max_mb} MB. The photo stays on this machine.</div>
</form>
{warning}
{body}
<p class="note">Model: {model}</p>
</body></html>"""


def result_html(pixels, records, heads, unsure=False):
    """The annotated photo inline (a data: URI, nothing external) and a row per face."""
    out = io.BytesIO()
    annotate.annotate(pixels, records, number_from=1).save(out, format="PNG")
    picture = base64.b64encode(out.getvalue()).decode()
    names = [c for c in report.columns(heads, unsure=unsure) if c not in ("input", "box")]
    header = "".join(f"<th>{html.escape(n.replace('_probability', ' p').replace('_', ' '))}</th>" for n in names)
    lines = [f"<div class='faces'><table id='faces'><tr>{header}</tr>"]
    for rec in records:
        row = report.flatten(rec, heads)
        row["face"] += 1
        cells = ((n, _percent(row[n]) if n.endswith("_probability") else row[n]) for n in names)
        lines.append("<tr>" + "".join(f"<td class='unsure'>{html.escape(str(c))}</td>" if n.endswith("_unsure") and c
                                      else f"<td>{html.escape(str(c))}</td>" for n, c in cells) + "</tr>")
    lines.append("</table></div>")
    return "\n".join(lines) + f"\n<img alt='your photo with the faces boxed' src='data:image/png;base64,{picture}'>"


def _percent(value):
    return f"{100 * value:.0f}%" if value != "" else ""


def answer(predictor, data, name):
    """(status, records, pixels or None, message): what both the page and the API say about a photo."""
    if not data:
        return 400, [], None, "Choose a photo first."
    result = next(predictor.predict_many([(name, data)], workers=0, keep_pixels=True))
    if result.unreadable:
        return 400, [], None, f"{name}: {result.error}."
    if result.error == NO_FACE:
        return 422, [], result.pixels, f"{name}: no face found. Try a photo where a face is clearly visible."
    if result.error:
        return 422, result.records, result.pixels, f"{name}: {result.error}."
    return 200, result.records, result.pixels, ""


def make_app(predictor, max_upload_mb, model_name):
    """The Flask app of the page and the API, sharing one loaded Predictor."""
    flask_app = flask.Flask(__name__)
    flask_app.config["MAX_CONTENT_LENGTH"] = max_upload_mb << 20
    flask_app.json.sort_keys = False  # Probabilities in class order, as the model gives them.
    warning = f"<p class='warning' id='warning'>{html.escape(predictor.warning)}</p>" if predictor.warning else ""

    def page(body, status=200):
        text = PAGE.format(body=body, max_mb=max_upload_mb, model=html.escape(model_name), warning=warning)
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
        status, records, pixels, message = answer(predictor, photo.read(), photo.filename)
        if status != 200:
            return error(message, status)
        return page(result_html(pixels, records, predictor.heads, unsure=bool(predictor.min_confidence)))

    @flask_app.post("/api/predict")
    def api():
        if flask.request.mimetype == "multipart/form-data":
            photo = flask.request.files.get("photo")
            data, name = (photo.read(), photo.filename or "photo") if photo else (b"", "photo")
        else:  # The raw body, whatever its Content-Type says (curl --data-binary sends a form type).
            data, name = flask.request.get_data(), "body"
        status, records, _, message = answer(predictor, data, name)
        body = {"input": name, "faces": records}
        if message:
            body["error"] = message
        return flask.jsonify(body), status

    @flask_app.errorhandler(413)
    def too_large(_):
        message = f"That file is larger than {max_upload_mb} MB."
        if flask.request.path.startswith("/api/"):
            return flask.jsonify({"error": message}), 413
        return error(message, 413)

    return flask_app
