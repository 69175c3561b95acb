"""Hostile tenant data end to end: a tenant whose every name is hostile, scanned by the command
line through the simulator into Azurite, alerted to the outbox.

The tenant is the bundled Contoso partner (users, registration details, Conditional Access,
groups, apps, service principals, sign-ins, GDAP) with every display name, given name, surname,
app name, resource name and non-browser client app replaced by one of HOSTILE_NAMES: markup and
script, OData quotes, CR/LF log forgery, ANSI escapes, bidi overrides and marks, NUL and other
controls, Unicode line separators, spreadsheet formulas, template syntax, path traversal and
10 KB strings (BMP and astral). Then:

- the digest email (`.eml`): the HTML part carries the names as text (no tag or attribute of
  theirs), the plain-text part and the subject are inert (no control, bidi or line-separator
  character; the subject one line);
- the terminal report on stdout and the log and progress on stderr are inert line by line
  (tests/test_secrets_logs.py reads every logger at DEBUG);
- every entity the scan stored, read back from Azurite table by table, is within Table
  Storage's limits, measured with partnerguard/storage/limits.py: each string property at most
  64 KiB (32 K UTF-16 units), each entity at most 1 MiB, keys free of `/ \\ # ?` and control
  characters and within 1 KiB. Azurite enforces none of this, Azure does.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.graph import client as graph_client
from partnerguard.storage.keys import MAX_KEY_UNITS, utf16_units
from partnerguard.storage.limits import MAX_ENTITY_BYTES, MAX_STRING_UNITS, entity_bytes
from testbed.simulator import TenantSimulator, bundled_scenarios
from testbed.simulator.scenario import TenantScenario
from tests.cli_harness import run_cli
from tests.graph_sim import fast_pacer
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

CONTOSO = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
RECIPIENT = "secops@contoso.example"
EXIT_FINDINGS = 1

# `{n}` makes each use distinct, so one name can be followed from Graph to the email.
HOSTILE_NAMES = [
    '<script>alert("pg{n}")</script>',
    "<img src=x onerror=alert({n})>",
    '"><svg onload=alert({n})><a href="javascript:alert({n})">',
    "O'Brien{n}') or (PartitionKey ne '",
    "line{n}\r\nFORGED ERROR partnerguard: a line of the tenant's making",
    "\x1b[2J\x1b[31mansi{n}\x1b[0m",
    "\u202egnp.{n}exe",
    "\u200frlm{n}\u061c\u2066isolate\u2069\u200e",
    "nul\x00bell\x07del\x7fc1\x85-{n}",
    "sep\u2028{n}\u2029para",
    "=cmd|' /C calc'!A{n}",
    "{{7*7}}{n} ${jndi:ldap://x/{n}}",
    "..\\..\\{n}/../../etc/passwd%00",
    "A" * 10_240 + "{n}",
    "\U0001f600" * 5_120 + "{n}",
]
NAME_KEYS = ("displayName", "userDisplayName", "appDisplayName", "givenName", "surname", "resourceDisplayName")
BROWSER_CLIENTS = ("browser", "mobile apps and desktop clients", "")
# Characters that make text act instead of read: C0/C1 controls (but tab and newline between
# lines), DEL, bidi embeddings/overrides/isolates/marks, line and paragraph separators.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\u061c]")


class Hostile:
    """Hands out hostile names, one per distinct original value, and remembers them."""

    def __init__(self) -> None:
        self.by_original: dict[str, str] = {}

    def name_for(self, original: str) -> str:
        if original not in self.by_original:
            n = len(self.by_original)
            self.by_original[original] = HOSTILE_NAMES[n % len(HOSTILE_NAMES)].replace("{n}", str(n))
        return self.by_original[original]

    def rewrite(self, value: Any) -> Any:
        """`value` (Graph JSON) with every name replaced."""
        if isinstance(value, list):
            return [self.rewrite(item) for item in value]
        if not isinstance(value, dict):
            return value
        rewritten = {}
        for key, item in value.items():
            if key in NAME_KEYS and isinstance(item, str) and item:
                rewritten[key] = self.name_for(item)
            elif key == "clientAppUsed" and isinstance(item, str) and item.lower() not in BROWSER_CLIENTS:
                # A legacy client's name is tenant data too, and part of a finding's subject id.
                rewritten[key] = f"{item} {self.name_for('client:' + item)}"
            else:
                rewritten[key] = self.rewrite(item)
        return rewritten


def hostile_contoso(hostile: Hostile) -> TenantScenario:
    [contoso] = [copy.deepcopy(s) for s in bundled_scenarios() if s.tenant_id == CONTOSO]
    contoso.display_name = hostile.name_for(contoso.display_name)
    contoso.organization = hostile.rewrite(contoso.organization)
    contoso.organization["displayName"] = contoso.display_name
    for name in (
        "users",
        "user_registration_details",
        "conditional_access_policies",
        "groups",
        "applications",
        "service_principals",
        "sign_ins",
        "delegated_admin_relationships",
    ):
        setattr(contoso, name, hostile.rewrite(getattr(contoso, name)))
    contoso.group_transitive_members = hostile.rewrite(contoso.group_transitive_members)
    contoso.authentication_methods = hostile.rewrite(contoso.authentication_methods)
    return contoso


HOSTILE = Hostile()


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    """Overrides the harness's bundled scenarios with the hostile Contoso alone."""
    with TenantSimulator([hostile_contoso(HOSTILE)], enforce_limits=False) as sim:
        yield sim


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def acting_lines(text: str) -> list[str]:
    """The lines of `text` that act instead of read: holding a control, bidi or separator
    character, or begun by a tenant's name (its CR/LF made it a line of its own)."""
    # Split on newlines only: the other breaks (CR, NEL, U+2028...) are what must not be there.
    acting = [line for line in text.split("\n") if UNSAFE.search(line.removesuffix("\r"))]
    return acting + [line for line in text.splitlines() if line.startswith("FORGED")]


def all_entities(connection_string: str) -> list[tuple[str, dict[str, Any]]]:
    service = TableServiceClient.from_connection_string(connection_string)
    try:
        rows = []
        for table in service.list_tables():
            client = service.get_table_client(table.name)
            rows += [(table.name, dict(entity)) for entity in client.list_entities()]
        return rows
    finally:
        service.close()


def test_a_tenant_whose_every_name_is_hostile(
    cli_env: dict[str, str],
    cli_storage: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("PARTNERGUARD_TENANTS", CONTOSO)
    monkeypatch.setenv("ALERT_RECIPIENTS", RECIPIENT)
    monkeypatch.setenv("EMAIL_OUTBOX_DIR", str(outbox))

    code, out, err = run_cli(capsys, "-v", "scan", "--tenant", CONTOSO)
    assert code == EXIT_FINDINGS, err[-3000:]
    names = len(HOSTILE.by_original)
    assert names >= len(HOSTILE_NAMES)  # every kind of hostile name is in the tenant

    # -- the email -----------------------------------------------------------------------------
    [eml] = outbox.glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    subject = str(message["Subject"])
    assert "\n" not in subject and "\r" not in subject and not UNSAFE.search(subject)
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    markup = Markup()
    markup.feed(html)
    assert not markup.tags & {"script", "img", "svg", "iframe", "object", "embed", "form", "input"}
    assert not [name for name, _ in markup.attributes if name.lower().startswith("on")]
    assert not [value for name, value in markup.attributes if value and "javascript:" in value.lower()]
    # The names are there, as text: the markup of one reads back verbatim from the HTML's text.
    assert any('<script>alert("pg' in chunk for chunk in markup.text)
    assert not acting_lines(html) and not acting_lines(text)
    record(
        "hostile data",
        "tenant whose every name is hostile: digest email (.eml) after a real scan",
        "HTML escaped (no tag or handler of theirs), text and subject inert, one-line subject",
        tried=names,
    )

    # -- the terminal and the log ----------------------------------------------------------------
    assert not acting_lines(out), acting_lines(out)[:3]
    assert not acting_lines(err), acting_lines(err)[:3]
    record(
        "hostile data",
        "tenant whose every name is hostile: terminal report (stdout) and log (stderr, -v)",
        "every line inert: no control, bidi or line-separator character, no forged line",
        tried=names,
    )

    # -- what was stored -------------------------------------------------------------------------
    entities = all_entities(cli_storage)
    assert {table for table, _ in entities} >= {"pgruns", "pgfindings", "pgrunfindings"}
    for table, entity in entities:
        where = f"{table} {entity['PartitionKey']!r}/{str(entity['RowKey'])[:80]!r}"
        for key in ("PartitionKey", "RowKey"):
            value = str(entity[key])
            assert utf16_units(value) <= MAX_KEY_UNITS, where
            assert not re.search(r"[/\\#?\x00-\x1f\x7f-\x9f]", value), where
        for name, value in entity.items():
            if isinstance(value, str):
                assert utf16_units(value) <= MAX_STRING_UNITS, f"{where}: {name}"
        assert entity_bytes(entity) <= MAX_ENTITY_BYTES, where
    stored_names = sum(1 for _, entity in entities if any(_is_hostile(v) for v in entity.values()))
    assert stored_names > 0
    record(
        "hostile data",
        "tenant whose every name is hostile: every stored entity read back from Azurite",
        "each string property ≤ 64 KiB, each entity ≤ 1 MiB, keys valid (Azurite enforces none)",
        tried=len(entities),
    )


def _is_hostile(value: object) -> bool:
    return isinstance(value, str) and any(
        fragment in value for fragment in ("<script>", "onerror=", "PartitionKey ne", "\U0001f600" * 8, "A" * 512)
    )


def test_acting_lines_sees_every_name_that_would_act() -> None:
    """The detector the test above relies on, on the raw hostile names: the ones made of
    markup, quotes, formulas or plain length are text; every other one is caught."""
    caught = {index for index, name in enumerate(HOSTILE_NAMES) if acting_lines(name.replace("{n}", "0"))}
    assert caught == {4, 5, 6, 7, 8, 9}
