import io
import os
import shutil
import threading

import pytest
from PIL import Image

from serving import faces, web
from serving.predictor import Predictor
from test_predict import two_faces


@pytest.fixture(scope="module")
def client(exported_model):
    flask_app = web.make_app(Predictor(exported_model), faces.Detector(), False, 1, "tiny")
    return flask_app.test_client()


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
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    flask_app = web.make_app(Predictor(exported_model), faces.Detector(), False, 5, "tiny")
    server = make_server("127.0.0.1", 0, flask_app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
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
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        driver.find_element(By.ID, "photo").send_keys(str(photo))
        driver.find_element(By.ID, "submit").click()
        table = WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.ID, "faces")))
        rows = table.find_elements(By.TAG_NAME, "tr")[1:]
        assert len(rows) == 2
        for row in rows:
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            assert cells[1].startswith("(") and cells[4] in ("m", "f") and cells[5].endswith("%")
        image = driver.find_element(By.TAG_NAME, "img")
        assert image.get_attribute("naturalWidth") == "700"  # The uploaded photo, annotated.
        driver.save_screenshot(os.environ.get("SERVE_SCREENSHOT", str(tmp_path / "page.png")))
    finally:
        driver.quit()
        server.shutdown()
