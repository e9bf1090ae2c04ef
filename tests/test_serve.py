import io
import os
import shutil
import subprocess
import sys
import threading

import pytest
from PIL import Image

from face_photos import two_faces
from processes import ROOT
from serving import web
from serving.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(exported_model):
    return Predictor(exported_model, detector="haar")


@pytest.fixture(scope="module")
def client(predictor):
    return web.make_app(predictor, 1, "tiny").test_client()


def upload(client, data, name="photo.jpg"):
    return client.post("/", data={"photo": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def jpeg(image):
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def test_the_page_has_the_form_and_no_external_assets(client):
    page = client.get("/").get_data(as_text=True)
    assert "<form" in page and 'type="file"' in page
    assert "http://" not in page and "https://" not in page


def test_faces_are_boxed_and_listed(client):
    response = upload(client, jpeg(two_faces()))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count("<tr>") == 3  # Header and two faces.
    assert "data:image/png;base64," in page
    assert "<th>gender p</th>" in page and "<th>next age</th>" in page  # Every head.


def test_unsure_answers_show_on_the_page_and_in_the_api(exported_model):
    strict = web.make_app(Predictor(exported_model, detector="haar", min_confidence=1.0), 1, "tiny").test_client()
    page = upload(strict, jpeg(two_faces())).get_data(as_text=True)
    assert "<th>age unsure</th>" in page and page.count("<td class='unsure'>unsure</td>") >= 2
    records = strict.post("/api/predict", data=jpeg(two_faces()), content_type="image/jpeg").get_json()["faces"]
    assert [r["age"]["unsure"] for r in records] == [True, True]


def test_the_api_answers_with_the_records_of_the_python_api(client, predictor):
    data = jpeg(two_faces())
    expected = predictor.predict(data)
    multipart = client.post("/api/predict", data={"photo": (io.BytesIO(data), "two.jpg")},
                            content_type="multipart/form-data")
    raw = client.post("/api/predict", data=data, content_type="image/jpeg")
    form_typed = client.post("/api/predict", data=data, content_type="application/x-www-form-urlencoded")
    for response, name in ((multipart, "two.jpg"), (raw, "body"), (form_typed, "body")):
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["input"] == name and "error" not in body
        assert [{**r, "input": "bytes"} for r in body["faces"]] == expected
        assert list(body["faces"][0]["age"]["probabilities"]) == predictor.class_names["age"]  # Class order kept.


@pytest.mark.parametrize("data,status,message", [
    (b"", 400, "Choose a photo first."),
    (b"not a picture", 400, "body: not an image."),
    (None, 422, "body: no face found."),
    (b"x" * (2 << 20), 413, "That file is larger than 1 MB."),
])
def test_the_api_says_what_is_wrong_in_json(client, data, status, message):
    if data is None:
        data = jpeg(Image.new("RGB", (200, 200), (120, 120, 120)))
    response = client.post("/api/predict", data=data, content_type="application/octet-stream")
    assert response.status_code == status and response.is_json
    assert message in response.get_json()["error"]


def test_a_decompression_bomb_is_refused_before_decoding(exported_model):
    out = io.BytesIO()
    Image.new("1", (5000, 5000)).save(out, format="PNG")  # 25 million pixels in a few kB.
    small_limit = web.make_app(Predictor(exported_model, detector="haar", max_pixels=10**6), 1, "tiny").test_client()
    response = small_limit.post("/api/predict", data=out.getvalue(), content_type="image/png")
    assert response.status_code == 400
    assert "5000x5000 is more pixels than the limit of 1,000,000" in response.get_json()["error"]


def test_the_page_warns_when_the_model_framing_cannot_be_reproduced(exported_model):
    page = web.make_app(Predictor(exported_model), 1, "tiny").test_client().get("/").get_data(as_text=True)
    assert "id='warning'" in page and "TRAINED ON THE DATASET" in page


@pytest.mark.parametrize("data,name,status,message", [
    (b"", "", 400, "Choose a photo first."),
    (b"not a picture", "notes.jpg", 400, "notes.jpg: not an image."),
    (None, "blank.jpg", 422, "blank.jpg: no face found."),
    (b"x" * (2 << 20), "huge.jpg", 413, "That file is larger than 1 MB."),
])
def test_bad_uploads_get_a_clear_message(client, data, name, status, message):
    if data is None:
        data = jpeg(Image.new("RGB", (200, 200), (120, 120, 120)))
    response = upload(client, data, name)
    assert response.status_code == status and message in response.get_data(as_text=True)


def browser_missing():
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            return f"{tool} is not installed (make browser installs Debian's chromium and chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return ""


@pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "browser present")
def test_upload_in_a_real_headless_browser(exported_model, tmp_path):
    import waitress
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    flask_app = web.make_app(Predictor(exported_model, detector="haar"), 5, "tiny")
    server = waitress.create_server(flask_app, host="127.0.0.1", port=0, threads=2)
    threading.Thread(target=server.run, daemon=True).start()
    photo = tmp_path / "two.jpg"
    two_faces().save(photo)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        driver.get(f"http://127.0.0.1:{server.effective_port}/")
        driver.find_element(By.ID, "photo").send_keys(str(photo))
        driver.find_element(By.ID, "submit").click()
        table = WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.ID, "faces")))
        rows = table.find_elements(By.TAG_NAME, "tr")[1:]
        assert len(rows) == 2
        for row in rows:
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            # face, status, age, age p, next age, next age p, gender, gender p
            assert cells[1] == "ok" and cells[2].startswith("(") and cells[6] in ("m", "f")
            assert cells[7].endswith("%")
        image = driver.find_element(By.TAG_NAME, "img")
        assert image.get_attribute("naturalWidth") == "700"  # The uploaded photo, annotated.
        driver.save_screenshot(os.environ.get("SERVE_SCREENSHOT", str(tmp_path / "page.png")))
    finally:
        driver.quit()
        server.close()


def test_the_load_test_passes_on_loopback(exported_model):
    """scripts/load_test.py, bounded: 16 clients, 2 rounds of 60 requests of every kind, to a
    waitress server on 127.0.0.1: every answer has the right status and it still answers."""
    script = os.path.join(ROOT, "scripts", "load_test.py")
    result = subprocess.run([sys.executable, script, f"--model={exported_model}", "--requests=60", "--clients=16",
                             "--threads=2", "--max_upload_mb=1"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.count("wrong or missing answers: 0") == 2 and "answered afterwards: 200" in result.stdout
