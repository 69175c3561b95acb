"""A page opened in Debian's headless Chromium, watched through the DevTools protocol.

`tests/test_report_html_browser.py` drives Chromium through its command line (`--dump-dom`,
`--screenshot`), which says nothing about what the page requested or logged. An email must load
nothing from anywhere and render without errors, so `open_page` starts Chromium with
`--remote-debugging-pipe` (the protocol over file descriptors 3 and 4, no port to find or
share), opens the page at a given viewport and records every request the page made and every
console message, exception and browser log entry. Same browser, flags and install advice as the
report's test.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

INSTALL = "apt-get update && apt-get install -y chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    # Nothing may resolve: a page that tried to reach the network fails fast and visibly here,
    # and the test machine's network is never used.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
TIMEOUT_SECONDS = 60


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(f"Chromium is needed for the browser test and is missing; install it with: {INSTALL}")
    return path


@dataclass
class PageVisit:
    """What Chromium saw while loading one page."""

    requests: list[str] = field(default_factory=list)  # every URL the page requested, its own included
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, error log entries
    height: int = 0  # the document's rendered height in CSS pixels at the viewport's width
    screenshot: bytes = b""  # PNG of the whole document

    def external_requests(self) -> list[str]:
        """Requests for anything but the page's own file (and inline data)."""
        return [url for url in self.requests if not url.startswith(("file:", "data:", "about:"))]


class _Pipe:
    """The DevTools protocol over Chromium's pipe: JSON messages, each ended by a NUL byte."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.process = process
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.from_browser], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"Chromium said nothing for {TIMEOUT_SECONDS} s")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise AssertionError(f"Chromium closed the pipe (exit {self.process.poll()})")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}")
    return found


def open_page(page: Path, profile: Path, viewport: tuple[int, int]) -> PageVisit:
    """Load `page` at `viewport` (width, height) and report what happened."""
    to_browser_read, to_browser = os.pipe()
    from_browser, from_browser_write = os.pipe()

    def child_descriptors() -> None:
        # Chromium reads commands on fd 3 and writes answers on fd 4 (--remote-debugging-pipe).
        # Copied out of the way first: the pipes may themselves be fds 3 and 4, and dup2 onto
        # the same number would keep them close-on-exec.
        reading, writing = os.dup(to_browser_read), os.dup(from_browser_write)
        os.dup2(reading, 3)
        os.dup2(writing, 4)

    process = subprocess.Popen(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=False,  # fds 3 and 4 are inherited; os.pipe()'s own are not (non-inheritable)
        preexec_fn=child_descriptors,  # only dup2 before exec: no Python state is touched
    )
    os.close(to_browser_read)
    os.close(from_browser_write)
    pipe = _Pipe(process, to_browser, from_browser)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            pipe.send(f"{domain}.enable", session=session)
        width, height = viewport
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        pipe.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        evaluated = pipe.send(
            "Runtime.evaluate",
            {"expression": "document.documentElement.scrollHeight", "returnByValue": True},
            session=session,
        )
        visit = PageVisit(height=int(evaluated["result"]["value"]))
        shot = pipe.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": visit.height, "scale": 1},
            },
            session=session,
        )
        visit.screenshot = base64.b64decode(shot["data"])
        visit.requests = [
            e["params"]["request"]["url"] for e in pipe.events if e.get("method") == "Network.requestWillBeSent"
        ]
        visit.errors = _errors(pipe.events)
        pipe.send("Browser.close")
        process.wait(timeout=TIMEOUT_SECONDS)
        return visit
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(to_browser)
        os.close(from_browser)
