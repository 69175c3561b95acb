"""The outbox: an alert written as an `.eml` file instead of being sent (EMAIL_OUTBOX_DIR, SPEC §5).

Used for local runs and the demo, when no Azure Communication Services resource is configured.
Each message is an RFC 5322 `multipart/alternative` message (plain text first, HTML last, so
clients show the richest part they can) that any mail client opens.

Two properties matter to the alert worker, which may run the same delivery twice (a queue
message redelivered after a crash):

- **atomic**: the message is written to a temporary file in the same directory, flushed to disk,
  and only then published under its final name, so a crash never leaves a half-written `.eml`
  (at worst a hidden `.<operation id>.*.tmp` file that no reader picks up);
- **idempotent**: the file name is the operation id, and publishing never replaces an existing
  file: a second write of the same operation id returns the first file, as ACS would answer an
  operation it already knows (SPEC §6) rather than send twice.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from notifiers.alert_transport import Lookup, SendRejected, SendUnavailable
from notifiers.digest_email import RenderedEmail

# The operation id becomes the file name: letters, digits, `-` and `_` only, so it can neither
# leave the directory (`..`, `/`) nor hide itself (a leading dot) nor clash with temp files.
OPERATION_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,127}")
# One plain address, as settings accept them (SPEC §5): no display name, and nothing that could
# end a header or add a recipient (whitespace, CR/LF, commas, semicolons, angle brackets).
_ADDRESS = re.compile(r"[^@\s,;<>\"()]+@([^@\s,;<>\"()]+\.[^@\s,;<>\"()]+)")
# Errors of a file system that has no hard links (FAT, some network shares): fall back to rename.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}


def eml_path(directory: Path, operation_id: str) -> Path:
    """Where the message of `operation_id` is (or would be) written."""
    if not OPERATION_ID.fullmatch(operation_id):
        raise ValueError(f"operation id must match {OPERATION_ID.pattern}, got {operation_id!r}")
    return directory / f"{operation_id}.eml"


def _checked_address(address: str, role: str) -> str:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"{role} is not a plain email address: {address!r}")
    return address


def build_message(
    sender: str,
    recipients: Sequence[str],
    rendered: RenderedEmail,
    operation_id: str,
    date: datetime | None = None,
) -> EmailMessage:
    """The RFC 5322 message for `rendered`, addressed from `sender` to `recipients`."""
    if isinstance(recipients, str):
        # A bare string is a sequence of characters: each would become a "recipient".
        raise TypeError("recipients must be a sequence of addresses, not one string")
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    if not OPERATION_ID.fullmatch(operation_id):
        raise ValueError(f"operation id must match {OPERATION_ID.pattern}, got {operation_id!r}")
    sender_match = _ADDRESS.fullmatch(_checked_address(sender, "sender"))
    assert sender_match is not None  # checked just above
    to = [_checked_address(address, "recipient") for address in dict.fromkeys(recipients)]
    # render_digest makes the subject one line; a RenderedEmail from anywhere else is checked
    # here too, because a line break in a header would let its text add headers (Bcc:, ...).
    if any(char in rendered.subject for char in "\r\n\x00\u2028\u2029"):
        raise ValueError("the subject must be a single line")

    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    # Deterministic, so a client that sees the same operation twice (outbox and a later ACS
    # send) can tell they are one message.
    message["Message-ID"] = f"<{operation_id}@{sender_match.group(1)}>"
    # RFC 3834: an automated message; out-of-office replies should not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message["X-PartnerGuard-Operation-Id"] = operation_id
    # Quoted-printable keeps the file 7-bit and its lines short, whatever the text holds.
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def write_eml(
    directory: Path | str,
    sender: str,
    recipients: Sequence[str],
    rendered: RenderedEmail,
    operation_id: str,
    *,
    date: datetime | None = None,
) -> Path:
    """Write the message as `<directory>/<operation_id>.eml`, once; return its path.

    When the file already exists (this operation was written before), it is left as it is and
    its path returned.
    """
    directory = Path(directory)
    target = eml_path(directory, operation_id)
    # Built (and so validated) before the early return, so bad input fails the same way whether
    # or not the operation was written before.
    data = build_message(sender, recipients, rendered, operation_id, date).as_bytes(policy=SMTP)
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{operation_id}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            # On disk before it has its name: after a power loss the name never points at a
            # file whose content did not make it.
            os.fsync(stream.fileno())
        _publish(temp, target)
        _sync_directory(directory)
    finally:
        temp.unlink(missing_ok=True)
    return target


def _publish(temp: Path, target: Path) -> None:
    """Give the complete temporary file its final name, unless a file already has it.

    A hard link is atomic and fails when the name exists, so of two concurrent writers of one
    operation exactly one publishes and the other keeps the first file. Where hard links are not
    supported, an atomic rename is the fallback: concurrent writers may then replace each other's
    (complete, equivalent) file, but there is still exactly one and it is never partial.
    """
    try:
        target.hardlink_to(temp)
    except FileExistsError:
        return
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if not target.exists():
            temp.replace(target)


def _sync_directory(directory: Path) -> None:
    """Make the new directory entry durable (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class EmlOutbox:
    """The outbox as an `EmailTransport` (notifiers/email_transport.py): a file per operation.

    `lookup` is whether the operation's file exists, which `write_eml` makes exact: a file only
    ever appears complete, under the operation id, once.
    """

    def __init__(self, directory: Path | str, sender: str) -> None:
        self.directory = Path(directory)
        self.sender = sender

    @property
    def name(self) -> str:
        return f"the outbox folder {self.directory}"

    def lookup(self, operation_id: str) -> Lookup:
        return Lookup("delivered" if eml_path(self.directory, operation_id).exists() else "unknown")

    def send(self, operation_id: str, recipients: Sequence[str], email: RenderedEmail) -> str | None:
        try:
            return str(write_eml(self.directory, self.sender, recipients, email, operation_id))
        except ValueError as error:
            raise SendRejected(str(error)) from error
        except OSError as error:
            # A full disk or a missing permission: maybe fixed by the next attempt. Never
            # ambiguous: a file only appears complete, so `lookup` is exact.
            raise SendUnavailable(
                f"could not write to {self.directory}: {error.strerror or error}", ambiguous=False
            ) from error

    def close(self) -> None:
        return None
