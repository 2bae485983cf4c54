"""JupyterLab in a real browser: the widgets students click, driven in headless Chromium by playwright.

    python scripts/browser_test.py          # (make browser-test) needs Debian's chromium at /usr/bin/chromium

Starts JupyterLab on a free local port with a random token, on copies of the notebooks in
build/browser/notebooks (JupyterLab autosaves: the committed notebooks stay untouched), quick profile on
the CPU with COURSE_MAX_STEPS=20 so that training cells take seconds. Then, as a student would:
- notebook 01: run every cell above the sampling control and the control itself, click Sample, move the
  temperature to 1.5 (typed into the slider's readout), click Sample again: new text must appear, start with
  the prime and differ from the first sample;
- notebook 03: the same up to the handwriting studio, change the bias, click Write: an image must appear;
  then run the drawing pad's cell, write "hello" on the canvas with the mouse (a synthetic writer's strokes,
  traced with press, moves and release), click Read: the recognizer's reading must appear in the box and be
  close to "hello"; click Write in my hand: an image must appear.
Screenshots go to build/browser/. Exits 1 on the first failed check.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# without the background-networking flags, Chromium keeps trying hosts this machine cannot reach
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_SECONDS = 900  # the longest a notebook may take to run up to its control (03 scores its writer first)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    env = dict(os.environ, COURSE_PROFILE="quick", COURSE_DEVICE="cpu", COURSE_MAX_STEPS="20",
               COURSE_BUILD_DIR=str(OUT / "build"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.pop("COURSE_HEADLESS", None)  # a real front end: widget progress bars are fine here
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(OUT / "jupyterlab.log", "w")
    lab = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return lab
        except OSError:
            if lab.poll() is not None:
                raise SystemExit(f"JupyterLab stopped at start: see {OUT / 'jupyterlab.log'}")
            time.sleep(1)
    lab.terminate()
    raise SystemExit(f"JupyterLab did not answer on port {port} within 120 s: see {OUT / 'jupyterlab.log'}")


def open_notebook(page, port: int, token: str, name: str):
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{name}?token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    # the kernel is ready when the status bar says Idle
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=120_000)
    dismiss_news(page)


def dismiss_news(page) -> None:
    """Answer JupyterLab's "get notified about Jupyter news?" with No, if it is showing."""
    no_news = page.locator(".jp-toast-button", has_text="No")
    if no_news.count():
        no_news.first.click()


def run_up_to(page, marker: str) -> object:
    """Select the cell whose code contains `marker`, run every cell above it, then it; return the cell."""
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text=marker)).first
    cell.locator(".jp-InputPrompt").click()  # selects the cell (command mode), as a click in its margin does
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Above Selected Cell").click()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")  # run the selected cell
    # done when the kernel is idle again and the cell has its execution count
    deadline = time.time() + RUN_SECONDS
    while time.time() < deadline:
        prompt = cell.locator(".jp-InputPrompt").inner_text()
        if "[*]" not in prompt and any(ch.isdigit() for ch in prompt):
            break
        time.sleep(2)
    else:
        raise AssertionError(f"the cells up to {marker!r} did not finish within {RUN_SECONDS} s")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                          has_text="Traceback")
    assert errors.count() == 0, f"a cell raised: {errors.first.inner_text()[:600]}"
    return cell


def set_slider(cell, description: str, value: float) -> None:
    """Type a value into a slider's readout (ipywidgets 8 makes it editable) and press Enter."""
    slider = cell.locator(".widget-slider", has=cell.page.locator("label", has_text=description)).first
    readout = slider.locator(".widget-readout")
    readout.click()
    readout.press("Control+a")
    readout.type(str(value))
    readout.press("Enter")
    shown = readout.inner_text().strip()
    assert float(shown) == value, f"the {description} slider shows {shown!r}, not {value}"


def check_sampling(page, port: int, token: str) -> None:
    open_notebook(page, port, token, "01_text_prediction.ipynb")
    cell = run_up_to(page, "temperature_slider = widgets.FloatSlider")
    button, output = cell.get_by_role("button", name="Sample"), cell.locator(".widget-output")
    button.click()
    first = wait_for_text(output, "")
    set_slider(cell, "temperature", 1.5)
    button.click()
    second = wait_for_text(output, first)
    cell.scroll_into_view_if_needed()
    dismiss_news(page)
    page.screenshot(path=str(OUT / "01_sampling.png"))
    assert second.startswith("the market "), f"the sample does not start with the prime: {second[:80]!r}"
    assert len(second) > 100, f"the sample at temperature 1.5 is too short: {second!r}"
    print(f"01: sampled at 0.8 then 1.5; new text: {second[:70]!r}...")


def wait_for_text(output, old: str, seconds: float = 60) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        now = output.inner_text().strip()
        if now and now != old:
            return now
        time.sleep(0.5)
    raise AssertionError(f"no new text appeared in the output within {seconds:.0f} s (it shows {old[:60]!r})")


def check_studio(page, port: int, token: str) -> None:
    open_notebook(page, port, token, "03_handwriting_synthesis.ipynb")
    cell = run_up_to(page, "bias_slider = widgets.FloatSlider")
    output = cell.locator(".widget-output")
    assert output.locator("img").count() == 0, "the studio shows an image before Write was clicked"
    set_slider(cell, "bias", 2.5)
    cell.get_by_role("button", name="Write").click()
    image = output.locator("img").first
    image.wait_for(timeout=120_000)
    box = image.bounding_box()
    cell.scroll_into_view_if_needed()
    dismiss_news(page)
    page.screenshot(path=str(OUT / "03_studio.png"))
    assert box and box["width"] > 200 and box["height"] > 50, f"the studio's image is too small: {box}"
    print(f"03: wrote at bias 2.5; an image of {box['width']:.0f} x {box['height']:.0f} px appeared")


def run_cell(page, marker: str, seconds: float = 120) -> object:
    """Run the one cell whose code contains `marker` (the cells above have run); return the cell."""
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text=marker)).first
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")
    deadline = time.time() + seconds
    while time.time() < deadline:
        prompt = cell.locator(".jp-InputPrompt").inner_text()
        if "[*]" not in prompt and any(ch.isdigit() for ch in prompt):
            return cell
        time.sleep(1)
    raise AssertionError(f"the cell with {marker!r} did not finish within {seconds:.0f} s")


def trace(page, canvas, word: str = "hello") -> int:
    """Write `word` on the canvas with the mouse, as a synthetic writer writes it; -> mouse moves made."""
    import numpy as np

    from course_utils.handwriting import strokes, synthetic

    lines = [s for s in strokes.to_stroke_list(synthetic.write(word, synthetic.WriterStyle(seed=1))) if len(s)]
    points = np.concatenate(lines)
    box = canvas.bounding_box()
    size = 0.5 * box["height"] / np.ptp(points[:, 1])  # the word fills half the canvas's height
    left, base = box["x"] + 40 - size * points[:, 0].min(), box["y"] + 0.75 * box["height"] + size * points[:, 1].min()
    moves = 0
    for stroke in lines:
        xy = [(float(left + size * x), float(base - size * y)) for x, y in stroke[::2]]  # every other tablet point
        page.mouse.move(*xy[0])
        page.mouse.down()
        for x, y in xy[1:]:
            page.mouse.move(x, y)
            moves += 1
        page.mouse.up()
    return moves


def check_pad(page) -> None:
    from course_utils.handwriting.recognizer import character_error_rate

    cell = run_cell(page, "board = drawing.DrawingPad()")
    canvas = cell.locator("canvas").first
    canvas.wait_for(timeout=30_000)
    canvas.scroll_into_view_if_needed()
    moves = trace(page, canvas)
    time.sleep(2)  # let the last mouse events reach the kernel
    page.screenshot(path=str(OUT / "03_pad_written.png"))
    cell.get_by_role("button", name="Read").click()
    said_box = cell.locator(".widget-text", has=page.locator("label", has_text="my line says")).locator("input")
    deadline = time.time() + 60
    while time.time() < deadline and not said_box.input_value().strip():
        time.sleep(0.5)
    said = said_box.input_value().strip()
    cell.get_by_role("button", name="Write in my hand").click()
    image = cell.locator(".widget-output img").first
    image.wait_for(timeout=120_000)
    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "03_pad.png"))
    cer = character_error_rate(["hello"], [said])
    assert cer <= 0.4, f"the recognizer read {said!r} on the pad, not 'hello' (CER {cer:.2f})"
    box = image.bounding_box()
    assert box and box["width"] > 200, f"the line written in the pad's hand is too small: {box}"
    print(f"03: wrote 'hello' on the pad with {moves} mouse moves; read as {said!r} (CER {cer:.2f}); "
          f"the writer's line in that hand appeared ({box['width']:.0f} x {box['height']:.0f} px)")


def shut_down_kernels(port: int, token: str) -> None:
    """Stop the kernels of the notebooks opened so far: one notebook computes at a time on a small machine."""
    import json

    base = f"http://127.0.0.1:{port}/api/sessions"
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(base, headers=headers), timeout=10) as answer:
        sessions = json.load(answer)
    for session in sessions:
        request = urllib.request.Request(f"{base}/{session['id']}", headers=headers, method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def main() -> int:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"No browser at {CHROMIUM}: sudo apt-get install chromium (or set CHROMIUM).")
    shutil.rmtree(OUT, ignore_errors=True)
    folder = OUT / "notebooks"
    folder.mkdir(parents=True)
    for name in ("01_text_prediction.ipynb", "03_handwriting_synthesis.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, folder / name)
    port, token = free_port(), secrets.token_hex(16)
    tick = time.perf_counter()
    lab = start_lab(folder, port, token)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            try:
                check_sampling(page, port, token)
                shut_down_kernels(port, token)
                check_studio(page, port, token)
                check_pad(page)
            except Exception:
                page.screenshot(path=str(OUT / "failure.png"))
                print(f"failed: the page as it was is in {OUT / 'failure.png'}", file=sys.stderr)
                raise
            finally:
                browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    print(f"browser test: 3 passed, 0 failed in {time.perf_counter() - tick:.0f} s (screenshots in {OUT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
