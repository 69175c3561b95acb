"""`make demo` (`python -m partnerguard demo`), as a newcomer runs it: Azurite on the emulator's
default ports, the bundled simulated tenants, the report, and each alert digest delivered once to
each channel — written to the outbox folder, posted to the Teams stand-in (which validates the
card), signed to the webhook stand-in (which verifies the signature and refuses a tampered copy) —
with where each went printed; a second demo finds nothing changed and delivers nothing."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path

import pytest

from testbed.azurite import default_ports_answer, stop_local_azurite
from testbed.demo import run_demo

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"


def written(out: str) -> list[Path]:
    return [Path(line.split("wrote ", 1)[1]) for line in out.splitlines() if line.strip().startswith("email    wrote ")]


def text_part(path: Path) -> str:
    message: Message = email.message_from_bytes(path.read_bytes())
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError(f"{path} has no text part")


def test_the_demo_writes_each_digest_once_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An Azurite already on the default ports (a developer's) holds earlier demo runs: then the
    # first demo here may owe nothing, and only the second run's promise can be checked.
    fresh_storage = not default_ports_answer()
    monkeypatch.chdir(tmp_path)
    try:
        assert run_demo() == 0
        first = capsys.readouterr().out
        assert run_demo() == 0
        second = capsys.readouterr().out
    finally:
        stop_local_azurite(tmp_path / ".azurite")

    assert "Alerts (a digest" in first and PARTNER in first  # the report, then where alerts went
    paths = written(first)
    cards = [line for line in first.splitlines() if line.strip().startswith("Teams    card accepted")]
    calls = [line for line in first.splitlines() if line.strip().startswith("webhook  signed digest accepted")]
    if fresh_storage:
        assert len(paths) >= 3  # one digest per simulated tenant with findings
        # The same digests, once each, on every channel; no webhook call is a repeat.
        assert len(cards) == len(calls) == len(paths)
        assert not any("a repeat" in line for line in calls)
        assert "a copy with one byte changed, same signature: refused by the stand-in (401)" in first
    for path in paths:
        assert path.parent == tmp_path / "outbox" and path.suffix == ".eml" and path.is_file()
    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.eml")) == sorted(p.name for p in paths)
    if paths:
        texts = [text_part(path) for path in paths]
        assert any(f"Id:       {PARTNER}" in text for text in texts)
        assert all("NEW FINDINGS" in text for text in texts)
    # Nothing changed between the two demos: nothing delivered anywhere.
    assert written(second) == []
    assert "Teams    card" not in second and "webhook  signed" not in second
    assert "none this time: nothing changed since the last scan" in second
