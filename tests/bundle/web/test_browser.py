"""The page in a real headless Chromium, on the demo model: upload, ask, see the mask, follow up, download, bad input.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); without them the
test fails, it is never skipped. The page's screenshot is saved under the test's temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from bundle.inference.overlay import MASK_ALPHA, MASK_COLOUR
from bundle.web.app import COOKIE
from tests.helpers.configs import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEMO_VOLUME = ROOT / "demo" / "imagesTr" / "phantom_000.nii.gz"
DEMO_CONFIGS = "['configs/model.json','configs/demo_model.json','configs/inference.json','configs/demo.json']"
FOLLOW_UP = "And the one on the other side?"
UPLOAD_LIMIT_MB = 1
START_S = 180
ANSWER_S = 300
BANNER = "MediSee web page: "
KEEP_SCREENSHOT = "MEDISEE_SCREENSHOT"


def demo_question() -> str:
    return json.loads((ROOT / "configs" / "demo.json").read_text())["query"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m bundle.web`` on the demo model, on a free port, its temporary folders under the test's."""
    temp = tmp_path_factory.mktemp("server_tmp")
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [sys.executable, "-m", "bundle.web", "--port", "0", "--max_upload_mb", str(UPLOAD_LIMIT_MB)]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    deadline = time.monotonic() + START_S
    printed = []
    while url is None and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        printed.append(line)
        if line.startswith(BANNER):
            url = line[len(BANNER) :].split()[0]
    assert url is not None, "".join(printed)
    yield url, temp
    child.send_signal(signal.SIGINT)
    child.wait(60)
    assert child.returncode == 0
    assert not any(temp.glob("medisee-web-*")), "the server left its session folders behind"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "install Debian's chromium and chromium-driver"
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver, downloads
    driver.quit()


@pytest.fixture(scope="module")
def cli_mask(tmp_path_factory) -> np.ndarray:
    """The main command's mask of the demo question (the first turn of the page asks the same)."""
    out = tmp_path_factory.mktemp("cli")
    subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", DEMO_CONFIGS, "--output_dir", str(out)],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return np.asanyarray(nib.load(out / "phantom_000_mask.nii.gz").dataobj)


def mask_coloured_pixels(png: bytes) -> int:
    """Pixels of a screenshot tinted by the overlay's mask colour (red well above green, green equal to blue)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red_over_green = MASK_ALPHA * (MASK_COLOUR[0] - MASK_COLOUR[1]) / 2
    return int(((rgb[..., 0] - rgb[..., 1] > red_over_green) & (abs(rgb[..., 1] - rgb[..., 2]) <= 2)).sum())


def wait_for_turns(driver, count: int) -> list:
    WebDriverWait(driver, ANSWER_S).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn")) >= count)
    return driver.find_elements(By.CSS_SELECTOR, ".turn")


def wait_for_view(driver, turn: int):
    """The axial view, once it shows turn ``turn`` and has loaded."""
    view = driver.find_element(By.CSS_SELECTOR, "#view-axial img")
    WebDriverWait(driver, 60).until(
        lambda d: (
            f"turn={turn}" in view.get_attribute("src")
            and d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", view)
        )
    )
    return view


def ask(driver, question: str) -> None:
    box = driver.find_element(By.ID, "question")
    WebDriverWait(driver, ANSWER_S).until(lambda d: box.is_enabled())
    box.send_keys(question)
    driver.find_element(By.ID, "ask").click()


def message(driver) -> str:
    box = driver.find_element(By.ID, "message")
    WebDriverWait(driver, 60).until(lambda d: box.is_displayed() and box.text.strip())
    return box.text


def uploads_left(temp: Path, driver) -> list[str]:
    """The files in the uploads folder of the browser's web session."""
    sid = driver.get_cookie(COOKIE)["value"]
    (root,) = temp.glob("medisee-web-*")
    return sorted(str(p.relative_to(root / sid / "uploads")) for p in root.glob(f"{sid}/uploads/**/*") if p.is_file())


def test_the_page_answers_the_demo_question_and_a_follow_up_in_chromium(server, browser, cli_mask, tmp_path):
    url, temp = server
    driver, downloads = browser
    driver.get(url)
    driver.find_element(By.ID, "file-input").send_keys(str(DEMO_VOLUME))
    WebDriverWait(driver, START_S).until(EC.text_to_be_present_in_element((By.ID, "volume-name"), "voxels"))
    assert "phantom_000.nii.gz" in driver.find_element(By.ID, "volume-name").text

    ask(driver, demo_question())
    (first,) = wait_for_turns(driver, 1)
    answer = first.find_element(By.CSS_SELECTOR, ".answer").text
    assert answer and answer != "(no answer text)"
    volume = first.find_element(By.CSS_SELECTOR, ".volume-ml").text
    assert volume.endswith(" mL") and float(volume.split()[1]) > 0
    assert mask_coloured_pixels(wait_for_view(driver, 1).screenshot_as_png) > 0

    ask(driver, FOLLOW_UP)
    turns = wait_for_turns(driver, 2)
    assert FOLLOW_UP in turns[1].find_element(By.CSS_SELECTOR, ".question").text
    wait_for_view(driver, 2)
    turns[0].click()  # back to the first turn's mask
    wait_for_view(driver, 1)
    driver.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 0

    turns[0].find_element(By.CSS_SELECTOR, "a[data-kind=mask]").click()
    saved = downloads / "phantom_000_turn1_mask.nii.gz"
    WebDriverWait(driver, 60).until(lambda d: saved.exists() and not list(downloads.glob("*.crdownload")))
    assert np.array_equal(np.asanyarray(nib.load(saved).dataobj), cli_mask)
    if os.environ.get(KEEP_SCREENSHOT):  # how the README's screenshot is made
        shutil.copy(tmp_path / "page.png", os.environ[KEEP_SCREENSHOT])
    assert uploads_left(temp, driver) == ["1/phantom_000.nii.gz"]


def test_bad_uploads_show_one_message_and_leave_no_files(server, browser, tmp_path):
    url, temp = server
    driver, _ = browser
    text = tmp_path / "notes.txt"
    text.write_text("not a volume")
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((32, 32), np.float32), np.eye(4)), flat)
    big = tmp_path / "big.nii.gz"
    big.write_bytes(b"\0" * (UPLOAD_LIMIT_MB * 2**20 + 1))
    for path, expected in ((text, "is not a volume the page reads"), (flat, "2D"), (big, "larger than the 1 MiB")):
        driver.get(url)
        driver.find_element(By.ID, "file-input").send_keys(str(path))
        shown = message(driver)
        assert expected in shown and path.name in shown and "\n" not in shown.strip()
        assert driver.find_element(By.ID, "question").get_attribute("disabled")  # no volume was opened
        assert uploads_left(temp, driver) == []
