"""Headless Chromium opens the rendered SVG and the Netron page that `netspec view` serves,
and takes screenshots; any page error fails the test. Skipped where Chromium is not installed
(CI installs Debian's `chromium`).

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages ending in NUL on file descriptors 3 and 4), so no driver package is needed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, netspec_view

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _onto_3_and_4(read_fd: int, write_fd: int) -> None:
    """In the child: the pipe ends onto fds 3 and 4, via fds above both, so neither clobbers
    the other."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (read_fd, write_fd)]
    os.dup2(high[0], 3)
    os.dup2(high[1], 4)


class Browser:
    """A headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "--window-size=1200,1600",
                "about:blank",
            ],
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _onto_3_and_4(to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = False, timeout: float = 30, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {expression}")
            time.sleep(0.2)

    def open(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(
            self.call("Page.captureScreenshot", session=True, format="png")["data"]
        )
        path.write_bytes(data)
        return data

    def errors(self, local: tuple[str, ...] = ("file:", "http://localhost", "http://127.")):
        """Uncaught exceptions, and error logs about local pages: a closed network makes
        a page's calls to outside hosts fail, which is not this project's error."""
        out = []
        for ev in self.events:
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(
                    p["exceptionDetails"].get("exception", {}).get("description")
                    or p["exceptionDetails"].get("text")
                )
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                url = p["entry"].get("url") or ""
                if not url or url.startswith(local):
                    out.append(f"{p['entry']['text']} ({url})")
            elif method == "Runtime.consoleAPICalled" and p["type"] == "error":
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        return out

    def close(self) -> None:
        try:  # let Chromium end its own child processes
            self.call("Browser.close", timeout=5)
            self.proc.wait(timeout=10)
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._r)
        os.close(self._w)


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: $NETSPEC_SCREENSHOTS if set (to look at them), else a temp dir."""
    d = Path(os.environ.get("NETSPEC_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def test_svg_opens_in_chromium(browser, tmp_path, shots):
    from netspec import load
    from netspec.render import render

    graph = load(ROOT / "specs" / "resnet18.yaml")
    svg = tmp_path / "resnet18.svg"
    svg.write_text(render(graph, "svg"), encoding="utf-8")
    browser.open(svg.as_uri())
    # An XML error would show Chromium's error page instead of an <svg> document.
    assert browser.evaluate("document.documentElement.localName") == "svg"
    assert browser.evaluate("document.getElementsByTagName('parsererror').length") == 0
    names = browser.evaluate(
        "Array.from(document.querySelectorAll('g[data-name]')).map(g => g.dataset.name)"
    )
    assert set(names) >= {n.name for n in graph.nodes}
    # Boxes are really drawn: the first conv has a laid-out size.
    width = browser.evaluate(
        "document.querySelector('g[data-name=\"conv1\"] rect').getBBox().width"
    )
    assert width > 50
    shot = browser.screenshot(shots / "resnet18-svg.png")
    assert shot.startswith(PNG_MAGIC) and len(shot) > 10_000
    assert browser.errors() == []


def test_netron_page_served_by_view(browser, shots):
    pytest.importorskip("netron")
    pytest.importorskip("onnx")
    # the line is the URL, printed once the server listens
    with netspec_view(ROOT / "specs" / "mlp.yaml") as (proc, port, line):
        assert f"http://localhost:{port}" in line, line + proc.stderr.read()
        url = f"http://localhost:{port}/"
        # Netron asks for cookie consent before it shows a model; answer it in advance.
        browser.call("Network.setCookie", session=True, name="consent", value="1", url=url)
        browser.open(url)
        # The model's graph is drawn: its layer names and ONNX ops appear as SVG text.
        browser.wait_for("document.querySelectorAll('#canvas .node').length >= 3", timeout=60)
        text = browser.evaluate("document.getElementById('canvas').textContent")
        assert "Gemm" in text or "MatMul" in text, text[:500]
        shot = browser.screenshot(shots / "mlp-netron.png")
        assert shot.startswith(PNG_MAGIC) and len(shot) > 5_000
        assert browser.errors() == []
