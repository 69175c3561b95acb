"""The .eml outbox: a parseable multipart/alternative message, written atomically and once."""

from __future__ import annotations

import errno
import os
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from notifiers.digest_email import Digest, RenderedEmail, render_digest
from notifiers.outbox import build_message, write_eml
from partnerguard.model import (
    CheckMetadata,
    CheckOutcome,
    CheckResult,
    Finding,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
    build_report,
)

SENDER = "partnerguard@alerts.example.net"
RECIPIENTS = ["admin@contoso.example", "secops@contoso.example"]
DATE = datetime(2026, 11, 26, 6, 1, 0, tzinfo=UTC)
TENANT = "8f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"


def _rendered(tenant_name: str = "Contoso", user: str = "Zoë <img src=x onerror=alert(1)>") -> RenderedEmail:
    meta = CheckMetadata("mfa.registration", "Every user can do MFA", Severity.HIGH, "why", "Register.", (), None)
    finding = Finding("u1", SubjectType.USER, user, "not MFA capable " + "x" * 300, Severity.CRITICAL)
    report = build_report(
        TenantInfo(TENANT, tenant_name, "partner"),
        "run-1",
        DATE,
        DATE,
        [CheckResult(meta, CheckOutcome(Status.FAIL, [finding]))],
        {},
    )
    return render_digest(Digest.from_run(report, [], {"mfa.registration": 2}), "https://pg.example.net")


def _parse(path: Path) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _body(part: EmailMessage) -> str:
    content = part.get_content()
    assert isinstance(content, str)
    # The file uses CRLF line ends (RFC 5322); the rendered parts use LF.
    return content.replace("\r\n", "\n")


def test_eml_parses_back_into_both_alternatives(tmp_path: Path) -> None:
    rendered = _rendered()
    path = write_eml(tmp_path, SENDER, RECIPIENTS, rendered, "op-0001", date=DATE)

    assert path == tmp_path / "op-0001.eml"
    message = _parse(path)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    plain, html = parts
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert _body(plain) == rendered.text
    assert _body(html) == rendered.html
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"

    assert message["From"] == SENDER
    assert [a.addr_spec for a in message["To"].addresses] == RECIPIENTS
    assert message["Subject"] == rendered.subject
    assert message["Message-ID"] == "<op-0001@alerts.example.net>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == DATE
    # 7-bit and short lines on disk, whatever the names hold.
    raw = path.read_bytes()
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_a_hostile_tenant_name_adds_no_header(tmp_path: Path) -> None:
    rendered = _rendered(tenant_name="Contoso\r\nBcc: attacker@evil.example\r\n\r\n<html>")
    message = _parse(write_eml(tmp_path, SENDER, RECIPIENTS, rendered, "op-hdr", date=DATE))

    assert message["Bcc"] is None
    assert set(message.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "X-PartnerGuard-Operation-Id",
        "MIME-Version",
        "Content-Type",
    }
    assert message["Subject"] == rendered.subject
    assert "\\x0d\\x0aBcc: attacker@evil.example" in message["Subject"]


def test_a_second_write_of_the_same_operation_keeps_the_first_file(tmp_path: Path) -> None:
    first = write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(user="First"), "op-twice", date=DATE)
    content = first.read_bytes()
    second = write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(user="Second"), "op-twice", date=DATE)

    assert second == first
    assert _files(tmp_path) == ["op-twice.eml"]
    assert first.read_bytes() == content
    assert "Second" not in _body(_parse(first).get_body(("plain",)))  # type: ignore[arg-type]


def test_concurrent_writers_of_one_operation_leave_one_complete_file(tmp_path: Path) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            barrier.wait()
            write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(user=f"Writer {index}"), "op-race", date=DATE)
        except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert _files(tmp_path) == ["op-race.eml"]
    assert len(list(_parse(tmp_path / "op-race.eml").iter_parts())) == 2


def test_a_crash_before_publishing_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def power_cut(descriptor: int) -> None:
        raise OSError(errno.EIO, "simulated crash while flushing")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError, match="simulated crash"):
        write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(), "op-crash", date=DATE)
    # Neither a half .eml nor the temporary file is left behind.
    assert _files(tmp_path) == []

    monkeypatch.undo()
    path = write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(), "op-crash", date=DATE)
    assert _files(tmp_path) == ["op-crash.eml"]
    assert len(list(_parse(path).iter_parts())) == 2


def test_without_hard_links_the_file_is_renamed_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hard_links(self: Path, target: Path) -> None:
        raise PermissionError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(Path, "hardlink_to", no_hard_links)
    path = write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(), "op-fat", date=DATE)
    assert _files(tmp_path) == ["op-fat.eml"]
    assert _parse(path)["X-PartnerGuard-Operation-Id"] == "op-fat"
    # Still written once.
    write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(user="Other"), "op-fat", date=DATE)
    assert _files(tmp_path) == ["op-fat.eml"]


def test_other_publishing_errors_are_raised_and_cleaned_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: Path, target: Path) -> None:
        raise OSError(errno.ENOSPC, "no space left")

    monkeypatch.setattr(Path, "hardlink_to", disk_full)
    with pytest.raises(OSError, match="no space"):
        write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(), "op-full", date=DATE)
    assert _files(tmp_path) == []


def test_the_outbox_directory_is_created(tmp_path: Path) -> None:
    directory = tmp_path / "outbox" / "nested"
    path = write_eml(str(directory), SENDER, RECIPIENTS, _rendered(), "op-dir", date=DATE)
    assert path.parent == directory and path.is_file()


@pytest.mark.parametrize("operation_id", ["", "../escape", "a/b", ".hidden", "a b", "op\n", "x" * 129, "op.eml"])
def test_operation_ids_that_are_not_plain_file_names_are_refused(tmp_path: Path, operation_id: str) -> None:
    with pytest.raises(ValueError, match="operation id"):
        write_eml(tmp_path, SENDER, RECIPIENTS, _rendered(), operation_id, date=DATE)
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        (SENDER, ["admin@contoso.example\r\nBcc: attacker@evil.example"]),
        (SENDER, ["admin@contoso.example, attacker@evil.example"]),
        (SENDER, ["Admin <admin@contoso.example>"]),
        (SENDER, ["not-an-address"]),
        (SENDER, []),
        ("pg@alerts.example.net\nBcc: attacker@evil.example", RECIPIENTS),
    ],
)
def test_addresses_that_could_add_recipients_are_refused(tmp_path: Path, sender: str, recipients: list[str]) -> None:
    with pytest.raises(ValueError):
        write_eml(tmp_path, sender, recipients, _rendered(), "op-addr", date=DATE)
    assert _files(tmp_path) == []


def test_a_single_string_of_recipients_is_refused() -> None:
    with pytest.raises(TypeError, match="sequence"):
        build_message(SENDER, "admin@contoso.example", _rendered(), "op-str")


@pytest.mark.parametrize("subject", ["Digest\r\nBcc: attacker@evil.example", "Digest\nX: y", "Digest\u2028x"])
def test_a_multi_line_subject_from_elsewhere_is_refused(subject: str) -> None:
    rendered = RenderedEmail(subject=subject, html="<p>x</p>", text="x")
    with pytest.raises(ValueError, match="single line"):
        build_message(SENDER, RECIPIENTS, rendered, "op-subj")


def test_duplicate_recipients_are_addressed_once() -> None:
    message = build_message(SENDER, [*RECIPIENTS, RECIPIENTS[0]], _rendered(), "op-dup", DATE)
    assert message["To"] == ", ".join(RECIPIENTS)
