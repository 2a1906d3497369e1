"""The widgets really work in JupyterLab: a real browser runs 06_latent_space, moves a slider
and sees the picture change, and presses play on chapter 00's steerable toy and sees it train.

The headless tests in test_explore.py drive the widgets from Python; only a browser shows
that the front end draws them, that a slider move reaches the kernel, and that the new
PNG comes back. The test starts `jupyter lab` on a free localhost port with a token, opens
the notebook in headless Chromium (Debian's `chromium`, driven by Playwright; Playwright's
own browser download is not needed), runs it with the Run menu, presses an arrow key on
the first latent slider and compares screenshots of the widget image.

JupyterLab's autosave is switched off and its checkpoints go to a temporary folder, so the
committed notebook is never written; the test checks that it is byte for byte the same.

Without Chromium or Playwright the test is skipped, except where the environment variable CI
is set (`.ci/run` sets it): there a missing tool is a failure, so CI cannot pass by skipping.
"""

import hashlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "notebooks/06_latent_space.ipynb"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTINGS = {  # JupyterLab user settings for this run only
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
RUN_TIMEOUT_S = 75  # the notebook in smoke mode, kernel start included
KEY_PRESSES = 10


def _missing() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install playwright"
    if not Path(CHROMIUM).is_file():
        return f"there is no Chromium at {CHROMIUM}: apt-get install -y chromium"
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _require_browser() -> None:
    """Skip where the browser is missing, except in CI (CI set), where that is a failure."""
    missing = _missing()
    if missing is None:
        return
    if _in_ci():
        pytest.fail(f"CI is set, so the browser test must run, but {missing}.", pytrace=False)
    pytest.skip(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    for name, values in SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_for_server(url: str, proc, timeout: float = 45) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout} s")


def _stop(proc) -> None:
    """End the server we started, and its kernels, by its process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def jupyter_lab(folder: Path, root: Path = ROOT):
    """(base URL, token) of a JupyterLab serving `root`, its state kept in `folder`."""
    port, token = _free_port(), secrets.token_hex(16)
    _write_settings(folder / "settings")
    env = dict(
        os.environ,
        GAN_SMOKE="1",
        JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
        JUPYTER_DATA_DIR=str(folder / "data"),  # notebook signatures, secrets
        JUPYTER_CONFIG_DIR=str(folder / "config"),
    )  # no user config interferes
    log_path = folder / "jupyter.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--FileCheckpoints.checkpoint_dir={folder / 'checkpoints'}",
            ],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_for_server(f"{base}/api/status?token={token}", proc)
            yield base, token
        except BaseException:
            print(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            _stop(proc)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


KERNEL_IDLE = "document.querySelector('#jp-main-statusbar').innerText.includes('| Idle')"

# Every code cell has run: its prompt shows a number, none is waiting ("[*]") or empty.
ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
  const failed = [...document.querySelectorAll('.jp-OutputArea-output')]
    .some(o => o.innerText.includes('Traceback (most recent call last)'));
  const ran = prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.innerText));
  return failed ? 'failed' : ran;
}"""

# Record when a key goes down and when the widget image gets a new picture (a new src).
WATCH = """img => {
  window.__keys = []; window.__pictures = [];
  document.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
  new MutationObserver(() => window.__pictures.push(performance.now()))
    .observe(img, {attributes: true, attributeFilter: ['src']});
}"""


def test_slider_moves_the_picture_in_jupyterlab(tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    before = _digest(ROOT / NOTEBOOK)
    with jupyter_lab(tmp_path) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            ran_s = _open_and_run_all(
                page, f"{base}/lab/tree/{NOTEBOOK}?reset&token={token}", tmp_path / "notebook.png"
            )
            image = page.locator("img.widget-image").first
            image.scroll_into_view_if_needed()
            assert image.evaluate("img => img.naturalWidth") > 0, "the widget image is empty"
            shot_before = image.screenshot()
            round_trips = _press_slider_keys(page, image)
            shot_after = image.screenshot(path=str(tmp_path / "widget.png"))
            page.locator(".widget-hbox").first.screenshot(path=str(tmp_path / "explorer.png"))
        finally:
            browser.close()
    print(
        f"notebook ran in {ran_s:.0f} s; key press to new picture: median "
        f"{statistics.median(round_trips):.0f} ms over {len(round_trips)} presses"
    )
    assert shot_after != shot_before, "the slider moved but the rendered picture did not change"
    assert _digest(ROOT / NOTEBOOK) == before, "the test must not save the notebook"


PLAYGROUND = {  # a notebook of one cell: chapter 00's steerable toy
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["from gan_helpers.toy import ToyPlayground\n", "ToyPlayground()"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 4,
}


def test_play_trains_the_toy_in_jupyterlab(tmp_path):
    """Pressing the Play widget's play button makes the kernel train and redraw, frame after
    frame, with no Python in between: the browser's own timer drives it."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    served = tmp_path / "served"
    served.mkdir()
    (served / "playground.ipynb").write_text(json.dumps(PLAYGROUND))
    with jupyter_lab(tmp_path, root=served) as (base, token), sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            url = f"{base}/lab/tree/playground.ipynb?reset&token={token}"
            _open_and_run_all(page, url, tmp_path / "notebook.png")
            image = page.locator("img.widget-image").first
            shot_before = image.screenshot()
            page.locator(".widget-play button").first.click()
            page.wait_for_function(
                "() => [...document.querySelectorAll('.widget-label')]"
                ".some(l => /step [1-9]/.test(l.innerText) && l.innerText.includes('frames/s'))"
            )
            page.wait_for_timeout(1500)
            shot_after = image.screenshot(path=str(tmp_path / "playground.png"))
            status = page.locator(".widget-label", has_text="frames/s").first.inner_text()
        finally:
            browser.close()
    print(f"after pressing play: {status}")
    assert shot_after != shot_before, "play was pressed but the picture did not change"


def _open_and_run_all(page, url: str, screenshot: Path) -> float:
    """Open the notebook, run all its cells from the Run menu as a reader would, and wait
    until every cell has run; returns the seconds taken, kernel start included."""
    start = time.monotonic()
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=45_000)
    # a Run All sent before the kernel is connected is dropped: wait for it
    page.wait_for_function(KERNEL_IDLE, timeout=45_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (state := page.evaluate(ALL_RAN)) is not True:
        page.screenshot(path=str(screenshot))
        assert state != "failed", f"a cell of the notebook raised; see {screenshot}"
        assert time.monotonic() < deadline, f"the notebook did not finish in time; see {screenshot}"
        time.sleep(1)
    return time.monotonic() - start


def _press_slider_keys(page, image) -> list:
    """Press an arrow key KEY_PRESSES times on the first latent slider, each time waiting
    for the widget image to get a new picture; returns each press's milliseconds from key
    down to new picture."""
    image.evaluate(WATCH)
    handle = page.locator(".widget-hslider .noUi-handle").first  # ipywidgets 8's slider
    handle.focus()
    # one slider step per press, away from the nearer end of the range
    key = "ArrowLeft" if float(handle.get_attribute("aria-valuenow")) > 0 else "ArrowRight"
    for _ in range(KEY_PRESSES):
        seen = page.evaluate("window.__pictures.length")
        page.keyboard.press(key)
        page.wait_for_function(f"window.__pictures.length > {seen}", timeout=10_000)
    keys, pictures = page.evaluate("[window.__keys, window.__pictures]")
    return [p - k for k, p in zip(keys, pictures)]
