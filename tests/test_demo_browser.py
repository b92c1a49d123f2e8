"""The demo page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium
uploads a shared clip, runs bicubic, and finds the result video at 4x the size, the comparison slider and the frame
control; a bad upload shows its one-line error on the page. Skipped, with the reason, without Chromium or Selenium.

Screenshots are saved in the test's temporary folder (printed with ``-s``).
"""

from __future__ import annotations

import shutil
import socket

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from sete_vsr.data.video_io import VideoReader, write_video  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Chromium not found (apt-get install chromium chromium-driver); the browser test needs both",
    ),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The demo page (bicubic, no model) on a free local port; yields its URL."""
    from sete_vsr.demo.app import build_app

    app = build_app(workdir=tmp_path_factory.mktemp("demo"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # the system driver: nothing downloaded
    yield driver
    driver.quit()


def upload(driver, page: str, path) -> WebDriverWait:
    wait = WebDriverWait(driver, 180)
    driver.get(page)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
    return wait


def test_upload_run_bicubic_compare_and_play(page, browser, shared, tmp_path):
    frames = VideoReader(shared("data", "frames", "vid4_calendar_LR_duf"), max_frames=6)
    clip = write_video(tmp_path / "calendar.mp4", frames, fps=10)
    wait = upload(browser, page, clip)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload video"))
    assert browser.find_element(By.CSS_SELECTOR, "#method input").get_attribute("value").startswith("bicubic")
    browser.find_element(By.CSS_SELECTOR, "#run").click()

    size = "const v = document.querySelector('#output-video video'); return v && [v.videoWidth, v.videoHeight]"
    wait.until(lambda d: (d.execute_script(size) or [0])[0] > 0)
    assert browser.execute_script(size) == [720, 576]
    assert browser.execute_script(size.replace("#output-video", "#input-video")) == [720, 576]
    assert "bicubic: 6 frames 180x144 -> 720x576" in browser.find_element(By.ID, "summary").text
    images = browser.find_elements(By.CSS_SELECTOR, "#compare img")
    assert len(images) == 2 and all("00000000.png" in image.get_attribute("src") for image in images)
    assert browser.find_elements(By.CSS_SELECTOR, "#download a")

    frame = browser.find_element(By.CSS_SELECTOR, "#frame input[type=number]")
    frame.send_keys(Keys.CONTROL, "a")
    frame.send_keys("5", Keys.ENTER)
    pair = "#compare img"
    wait.until(lambda d: all("00000005.png" in i.get_attribute("src") for i in d.find_elements(By.CSS_SELECTOR, pair)))
    browser.find_element(By.CSS_SELECTOR, "#sample input").click()  # picking a sample clears the upload
    next(o for o in browser.find_elements(By.CSS_SELECTOR, "#sample [role=option]") if "carphone" in o.text).click()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#upload video"))
    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


def test_bad_upload_shows_one_line_on_the_page(page, browser, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    wait = upload(browser, page, bad)
    browser.find_element(By.CSS_SELECTOR, "#run").click()
    wait.until(lambda d: "cannot read video" in d.find_element(By.TAG_NAME, "body").text)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in body
    browser.save_screenshot(str(tmp_path / "error.png"))
    print(f"screenshot: {tmp_path / 'error.png'}")
