"""The alert outbox in Table Storage: what is owed to whom, and which email carries it.

Exactly-once delivery (partnerguard/alerts/delivery.py) rests on two kinds of rows, both in the
table `<prefix>alerts`, partitioned by **destination**: an email recipient set (`r-` and 32 hex
digits of the SHA-256 of the sorted, lower-cased addresses), a Teams webhook (`t-`) or a JSON
webhook (`w-`, both hashes of whose setting names the URL, which is a secret and never stored;
`destination_key`), so every alert that
may share a message with another is in one partition and one query finds them. (The rows call
every message an "email", whatever its channel.)

- an **alert** (RowKey = the alert id, e.g. `run~<tenant>~<run id>`): one piece of news owed to
  the recipient set — a run's digest, a reminder, a health problem — written *before* anything
  is sent. `state` is `pending`, `sent`, `failed`, or `dropped` (nothing left to say when it
  came to be sent); `email` names the operation id of the email that carries it once claimed;
  `generation` counts how often it was taken back out of an email (after a 429), so the next
  email it goes into has a new id; `throttled` lets later tries send it together with every
  other alert pending for the same recipients; `next_attempt` is when a queue message for it
  should have been handled (the timer queues it again after that: a lost message loses
  nothing);
- an **email** (RowKey `email~<operation id>`): `pending` → `sending` (a lease held by one
  worker until `lease_until`) → `sent` | `failed` | `dropped`, or `throttled` (ACS refused it
  with 429; never reused). `alert_ids` are written under the lease in the same write that
  renews it just before the send (`begin_send`): they are what the email carries. That write
  also records the attempt (`attempt_started`, `ambiguous`); a send that then fails without
  telling whether the service took the message records when the client gave up
  (`attempt_ended`), and the next try trusts a "never seen" only ALERT_SETTLE_SECONDS after
  that. `denied_since` is when an unbroken run of refusals of the caller (401/403) began. Email rows are
  never deleted before retention, so an operation id is used once.

Every change of an existing row is an ETag-conditioned or plain *update*, never an upsert: a
worker acting on what it read a moment ago can neither resurrect a row nor undo another's
change unseen. Every write of an email row after its creation is conditioned on the ETag the
writer's own previous write returned (never on a fresh read, which may be another worker's
lease): a worker whose lease was taken over can change nothing.
The ids made by `alert_id_*` are built from tenant GUIDs, run ids, queue names
and message ids, all safe RowKey characters (checked).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from partnerguard.logs import redact
from partnerguard.storage.batching import delete, submit_all
from partnerguard.storage.keys import TABLE_PREFIX_RE, utf16_units
from partnerguard.storage.limits import MAX_TEXT_UNITS, cap_text, to_json
from partnerguard.storage.records import as_utc

ALERT_PENDING = "pending"
ALERT_SENT = "sent"
ALERT_FAILED = "failed"
# Nothing left to say by the time the alert was sent (a reminder whose findings were all
# resolved meanwhile): done, without an email.
ALERT_DROPPED = "dropped"
ALERT_STATES = (ALERT_PENDING, ALERT_SENT, ALERT_FAILED, ALERT_DROPPED)
DONE_STATES = frozenset({ALERT_SENT, ALERT_FAILED, ALERT_DROPPED})
# Email-only states: leased by one worker; refused by ACS with 429 and abandoned.
EMAIL_SENDING = "sending"
EMAIL_THROTTLED = "throttled"
EMAIL_STATES = (*ALERT_STATES, EMAIL_SENDING, EMAIL_THROTTLED)

ALERT_KINDS = ("run", "reminder", "health")

# What an alert's payload may hold: a string property holds 32 K UTF-16 units; the rest of the
# entity needs room too.
MAX_PAYLOAD_UNITS = 24 * 1024

EMAIL_PREFIX = "email~"
# `r-` an email recipient set, `t-` a Teams webhook, `w-` a JSON webhook (`destination_key`).
PARTITION_RE = re.compile(r"[rtw]-[0-9a-f]{32}")
CHANNEL_PREFIXES = {"email": "r-", "teams": "t-", "webhook": "w-"}
# Alert ids: what `alert_id_*` make. `~` separates the parts; nothing a RowKey forbids.
ALERT_ID_RE = re.compile(r"(run|reminder|health)~[0-9A-Za-z~._-]{1,240}")
OPERATION_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_PART_RE = re.compile(r"[0-9A-Za-z._-]{1,100}")


def alerts_table_name(prefix: str) -> str:
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    return f"{prefix}alerts"


def recipients_key(recipients: Sequence[str]) -> str:
    """The partition of a recipient set: the same for any order or letter case of the addresses."""
    if isinstance(recipients, str) or not recipients:
        raise ValueError("a recipient set is a non-empty sequence of addresses")
    canonical = "\n".join(sorted({address.strip().lower() for address in recipients}))
    return "r-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def destination_key(channel: str, owner: str) -> str:
    """The partition of a Teams or webhook destination: a hash of the channel and whose setting
    names it (`default` for ALERT_TEAMS_WEBHOOK_URL / ALERT_WEBHOOK_URL, else the tenant id of
    its ALERT_ROUTES_BY_TENANT entry). Not the URL: a URL is a secret, and a rotated one (a
    Workflows URL re-generated) must still deliver what the old one owed."""
    if channel not in ("teams", "webhook") or not owner:
        raise ValueError(f"not a channel destination: {channel!r}")
    return CHANNEL_PREFIXES[channel] + hashlib.sha256(f"{channel}\n{owner.lower()}".encode()).hexdigest()[:32]


def _alert_id(kind: str, *parts: str) -> str:
    for part in parts:
        if not _ID_PART_RE.fullmatch(part):
            raise ValueError(f"alert id part {part!r} has characters an alert id does not allow")
    return "~".join((kind, *parts))


def alert_id_run(tenant_id: str, run_id: str) -> str:
    return _alert_id("run", tenant_id.lower(), run_id)


def alert_id_reminder(tenant_id: str, slot: str) -> str:
    return _alert_id("reminder", tenant_id.lower(), slot)


def alert_id_health(problem_kind: str, subject: str, incident: str) -> str:
    return _alert_id("health", problem_kind, subject.lower(), incident)


@dataclass(frozen=True)
class AlertRecord:
    partition: str
    alert_id: str
    kind: str
    recipients: tuple[str, ...]
    state: str = ALERT_PENDING
    tenant_id: str | None = None
    run_id: str | None = None
    # What the email needs that storage does not keep elsewhere (health problems, reminder keys).
    payload: Mapping[str, Any] = field(default_factory=dict)
    email: str | None = None
    throttled: bool = False
    generation: int = 0
    created: datetime | None = None
    next_attempt: datetime | None = None
    error: str | None = None
    etag: str | None = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> AlertRecord:
        def text(name: str) -> str | None:
            value = entity.get(name)
            return value if isinstance(value, str) and value else None

        payload_text = text("payload")
        metadata = getattr(entity, "metadata", {}) or {}
        return cls(
            partition=str(entity["PartitionKey"]),
            alert_id=str(entity["RowKey"]),
            kind=text("kind") or "run",
            recipients=tuple(json.loads(text("recipients") or "[]")),
            state=text("state") or ALERT_PENDING,
            tenant_id=text("tenant_id"),
            run_id=text("run_id"),
            payload=json.loads(payload_text) if payload_text else {},
            email=text("email"),
            throttled=entity.get("throttled") is True,
            generation=int(entity.get("generation") or 0),
            created=as_utc(entity.get("created")),
            next_attempt=as_utc(entity.get("next_attempt")),
            error=text("error"),
            etag=metadata.get("etag"),
        )


@dataclass(frozen=True)
class EmailRecord:
    partition: str
    operation_id: str
    alert_ids: tuple[str, ...]
    state: str = ALERT_PENDING
    created: datetime | None = None
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    # Where it went: the transport's name, or the .eml path.
    target: str | None = None
    error: str | None = None
    # Whether a later lookup saw the service deliver it (ACS: operation Succeeded).
    verified: bool = False
    # The last send attempt: when it began (under a renewed lease), whether the service may
    # have taken it without saying so, and when the client gave up on it (when it knows).
    attempt_started: datetime | None = None
    ambiguous: bool = False
    attempt_ended: datetime | None = None
    # When the service first refused the caller (401/403) for this email.
    denied_since: datetime | None = None
    etag: str | None = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> EmailRecord:
        row = str(entity["RowKey"])
        target = entity.get("target")
        error = entity.get("error")
        metadata = getattr(entity, "metadata", {}) or {}
        return cls(
            partition=str(entity["PartitionKey"]),
            operation_id=row.removeprefix(EMAIL_PREFIX),
            alert_ids=tuple(json.loads(str(entity.get("alert_ids") or "[]"))),
            state=str(entity.get("state") or ALERT_PENDING),
            created=as_utc(entity.get("created")),
            lease_until=as_utc(entity.get("lease_until")),
            sent_at=as_utc(entity.get("sent_at")),
            target=target if isinstance(target, str) and target else None,
            error=error if isinstance(error, str) and error else None,
            verified=entity.get("verified") is True,
            attempt_started=as_utc(entity.get("attempt_started")),
            ambiguous=entity.get("ambiguous") is True,
            attempt_ended=as_utc(entity.get("attempt_ended")),
            denied_since=as_utc(entity.get("denied_since")),
            etag=metadata.get("etag"),
        )

    def lease_live(self, now: datetime) -> bool:
        return self.state == EMAIL_SENDING and self.lease_until is not None and self.lease_until > now

    def settle_from(self, attempt_bound: timedelta) -> datetime | None:
        """When the last ambiguous attempt was over for sure; None when no attempt is in doubt.

        The moment the client gave up, when it lived to record it; otherwise (it crashed mid-send)
        the attempt's start plus `attempt_bound`, the lease that covered it."""
        if not self.ambiguous or self.attempt_started is None:
            return None
        if self.attempt_ended is not None and self.attempt_ended >= self.attempt_started:
            return self.attempt_ended
        return self.attempt_started + attempt_bound


def _check_partition(partition: str) -> str:
    if not PARTITION_RE.fullmatch(partition):
        raise ValueError(f"not an alert partition: {partition!r}")
    return partition


def _check_alert_id(alert_id: str) -> str:
    if not ALERT_ID_RE.fullmatch(alert_id):
        raise ValueError(f"not an alert id: {alert_id!r}")
    return alert_id


class AlertStore:
    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        self.service = service
        self.table: TableClient = service.get_table_client(alerts_table_name(prefix))

    def ensure_tables(self) -> None:
        self.service.create_table_if_not_exists(self.table.table_name)

    def close(self) -> None:
        self.table.close()

    def _get(self, partition: str, row: str) -> TableEntity | None:
        try:
            return self.table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def _update(self, entity: dict[str, Any], etag: str | None = None) -> str | None:
        """Merge into an existing row (conditionally on `etag`); the row's new ETag, or None when
        it is gone or changed."""
        try:
            if etag is None:
                metadata = self.table.update_entity(entity, mode=UpdateMode.MERGE)
            else:
                metadata = self.table.update_entity(
                    entity, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        new_etag = metadata.get("etag") if isinstance(metadata, Mapping) else None
        if not new_etag:
            raise RuntimeError("Table Storage answered an update without an ETag")
        return str(new_etag)

    def _update_email(self, email: EmailRecord, changes: dict[str, Any]) -> str | None:
        """Change the email row, conditionally on the ETag of `email` (the writer's own last
        write or read); the new ETag, or None when anyone changed the row since."""
        if email.etag is None:
            raise ValueError("an email row is only changed from a record that carries its ETag")
        entity = {"PartitionKey": email.partition, "RowKey": EMAIL_PREFIX + email.operation_id, **changes}
        return self._update(entity, email.etag)

    # -- alerts -----------------------------------------------------------------------------

    def add(
        self,
        kind: str,
        alert_id: str,
        recipients: Sequence[str],
        now: datetime,
        *,
        tenant_id: str | None = None,
        run_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        partition: str | None = None,
    ) -> tuple[AlertRecord, bool]:
        """Record an alert owed to `recipients`; (the record, whether it is new).

        `partition` is the destination's key when it is not an email recipient set
        (`destination_key`); `recipients` then name the channel, never its URL.
        An alert id that exists already is that same news (the ids are deterministic): it is
        returned as stored, never reset, so news is never owed twice."""
        if kind not in ALERT_KINDS:
            raise ValueError(f"alert kind must be one of {ALERT_KINDS}, got {kind!r}")
        partition = _check_partition(partition) if partition is not None else recipients_key(recipients)
        payload_json = to_json(dict(payload or {}))
        if utf16_units(payload_json) > MAX_PAYLOAD_UNITS:
            # Never cut: a cut JSON document would make the row unreadable for good.
            raise ValueError(f"alert payload too large ({utf16_units(payload_json)} UTF-16 units)")
        entity: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": _check_alert_id(alert_id),
            "kind": kind,
            "recipients": to_json(sorted({address.strip() for address in recipients})),
            "state": ALERT_PENDING,
            "tenant_id": tenant_id or "",
            "run_id": run_id or "",
            "payload": payload_json,
            "email": "",
            "throttled": False,
            "generation": 0,
            "created": now,
            # Due at once: whoever recorded it queues it now and moves this on (`schedule`).
            "next_attempt": now,
            "error": "",
        }
        try:
            self.table.create_entity(entity)
            created = True
        except ResourceExistsError:
            created = False
        record = self.get(partition, alert_id)
        if record is None:  # deleted between the two calls: only retention does that
            raise RuntimeError(f"alert {alert_id} vanished while it was recorded")
        return record, created

    def get(self, partition: str, alert_id: str) -> AlertRecord | None:
        entity = self._get(_check_partition(partition), _check_alert_id(alert_id))
        return None if entity is None else AlertRecord.from_entity(entity)

    def pending_unclaimed(self, partition: str, limit: int) -> list[AlertRecord]:
        """Alerts of the recipient set still owed and in no email, oldest first."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk and state eq @pending and email eq ''",
            parameters={"pk": _check_partition(partition), "pending": ALERT_PENDING},
        )
        records = [AlertRecord.from_entity(row) for row in rows if str(row["RowKey"]).startswith(ALERT_KINDS)]
        records.sort(key=lambda r: (r.created.timestamp() if r.created else 0.0, r.alert_id))
        return records[:limit]

    def claimed_by(self, partition: str, operation_id: str) -> list[AlertRecord]:
        """The pending alerts claimed into the email `operation_id`."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk and email eq @op and state eq @pending",
            parameters={"pk": _check_partition(partition), "op": operation_id, "pending": ALERT_PENDING},
        )
        return sorted((AlertRecord.from_entity(row) for row in rows), key=lambda r: r.alert_id)

    def claim(self, alert: AlertRecord, operation_id: str) -> bool:
        """Put `alert` into the email `operation_id`, unless it changed since it was read."""
        if alert.etag is None:
            raise ValueError("claim needs an alert read from storage (with its ETag)")
        return (
            self._update({"PartitionKey": alert.partition, "RowKey": alert.alert_id, "email": operation_id}, alert.etag)
            is not None
        )

    def release(self, alerts: Iterable[AlertRecord], operation_id: str, *, throttled: bool, error: str = "") -> None:
        """Take alerts back out of the email `operation_id` (ACS refused it with 429, or it
        finished without them): owed again, in a new generation, so the next email has a new id.
        An alert no longer in that email (another worker moved it) is left as it is."""
        for alert in alerts:
            current: AlertRecord | None = alert
            for _ in range(_MAX_ROUNDS):
                if current is None or current.email != operation_id or current.state != ALERT_PENDING:
                    break
                entity = {
                    "PartitionKey": current.partition,
                    "RowKey": current.alert_id,
                    "email": "",
                    "generation": current.generation + 1,
                    "throttled": current.throttled or throttled,
                    "error": cap_text(redact(error), MAX_TEXT_UNITS) if error else current.error or "",
                }
                if self._update(entity, current.etag):
                    break
                current = self.get(alert.partition, alert.alert_id)

    def set_state(self, alerts: Iterable[AlertRecord], state: str, error: str | None = None) -> None:
        """Finish alerts (sent, failed, dropped). Only ever an update: a missing row stays missing."""
        if state not in ALERT_STATES:
            raise ValueError(f"alert state must be one of {ALERT_STATES}, got {state!r}")
        for alert in alerts:
            self._update(
                {
                    "PartitionKey": alert.partition,
                    "RowKey": _check_alert_id(alert.alert_id),
                    "state": state,
                    "error": cap_text(redact(error), MAX_TEXT_UNITS) if error else "",
                }
            )

    def schedule(self, alert: AlertRecord, when: datetime) -> None:
        """When the alert's queue message should have been handled by (see `due`)."""
        self._update({"PartitionKey": alert.partition, "RowKey": alert.alert_id, "next_attempt": when})

    def due(self, now: datetime, limit: int = 500) -> list[AlertRecord]:
        """Pending alerts whose message should have been handled by now: lost, or never queued."""
        rows = self.table.query_entities(
            "state eq @pending and next_attempt lt @now",
            parameters={"pending": ALERT_PENDING, "now": now},
        )
        due = []
        for row in rows:
            if str(row["RowKey"]).startswith(EMAIL_PREFIX):
                continue
            record = AlertRecord.from_entity(row)
            due.append(record)
            if len(due) >= limit:
                break
        return due

    def all(self, partition: str | None = None) -> list[AlertRecord]:
        """Every alert (of one recipient set), for the operator and tests."""
        if partition is None:
            rows = self.table.list_entities()
        else:
            rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": _check_partition(partition)})
        return [AlertRecord.from_entity(row) for row in rows if not str(row["RowKey"]).startswith(EMAIL_PREFIX)]

    # -- emails -----------------------------------------------------------------------------

    def open_email(self, partition: str, operation_id: str, now: datetime) -> EmailRecord:
        """The email `operation_id`: recorded now, or as recorded before (never recreated:
        email rows are not deleted)."""
        if not OPERATION_ID_RE.fullmatch(operation_id):
            raise ValueError(f"not an operation id: {operation_id!r}")
        entity = {
            "PartitionKey": _check_partition(partition),
            "RowKey": EMAIL_PREFIX + operation_id,
            "alert_ids": "[]",
            "state": ALERT_PENDING,
            "created": now,
            "target": "",
            "error": "",
        }
        with contextlib.suppress(ResourceExistsError):
            self.table.create_entity(entity)
        email = self.get_email(partition, operation_id)
        if email is None:
            raise RuntimeError(f"email {operation_id} vanished while it was recorded")
        return email

    def get_email(self, partition: str, operation_id: str) -> EmailRecord | None:
        entity = self._get(_check_partition(partition), EMAIL_PREFIX + operation_id)
        return None if entity is None else EmailRecord.from_entity(entity)

    def lease(self, email: EmailRecord, now: datetime, duration: timedelta) -> EmailRecord | None:
        """Take the email for sending until `now + duration`; None when another worker holds it
        or it changed since it was read. Only a pending email, or one whose lease ran out. The
        record returned carries the ETag of this write: the lease's own."""
        if email.state not in (ALERT_PENDING, EMAIL_SENDING) or email.lease_live(now):
            return None
        until = now + duration
        etag = self._update_email(email, {"state": EMAIL_SENDING, "lease_until": until})
        return None if etag is None else replace(email, state=EMAIL_SENDING, lease_until=until, etag=etag)

    def begin_send(
        self, email: EmailRecord, alert_ids: Sequence[str], now: datetime, duration: timedelta
    ) -> EmailRecord | None:
        """Immediately before the send, under the lease: renew it to `now + duration`, write which
        alerts the email carries, and record the attempt (in doubt until it is known to have
        failed). A run of 401/403 is over (the lookup before was answered). None when the lease
        was lost (anyone changed the row since `email`)."""
        until = now + duration
        ids = [_check_alert_id(a) for a in alert_ids]
        changes: dict[str, Any] = {
            "state": EMAIL_SENDING,
            "lease_until": until,
            "alert_ids": to_json(ids),
            "attempt_started": now,
            "ambiguous": True,
        }
        if email.denied_since is not None:
            changes["denied_since"] = ""  # read back as None
        etag = self._update_email(email, changes)
        if etag is None:
            return None
        return replace(
            email,
            state=EMAIL_SENDING,
            lease_until=until,
            alert_ids=tuple(ids),
            attempt_started=now,
            ambiguous=True,
            denied_since=None,
            etag=etag,
        )

    def unlease(
        self,
        email: EmailRecord,
        *,
        ambiguous: bool | None = None,
        attempt_ended: datetime | None = None,
        denied_since: datetime | None = None,
        clear_denied: bool = False,
    ) -> bool:
        """Give the email back (a lookup or send failed for now): another try may take it. With
        the attempt's outcome when known: still in doubt (and since when the client gave up), or
        certainly not taken; `clear_denied` ends a run of 401/403 (the service answered
        otherwise). False when the lease was lost meanwhile: nothing is changed then."""
        changes: dict[str, Any] = {"state": ALERT_PENDING}
        if ambiguous is not None:
            changes["ambiguous"] = ambiguous
        if attempt_ended is not None:
            changes["attempt_ended"] = attempt_ended
        if denied_since is not None:
            changes["denied_since"] = denied_since
        elif clear_denied:
            changes["denied_since"] = ""  # read back as None
        return self._update_email(email, changes) is not None

    def finish_email(
        self,
        email: EmailRecord,
        state: str,
        now: datetime,
        target: str | None = None,
        error: str | None = None,
        *,
        verifiable: bool = True,
    ) -> bool:
        """The email's outcome, under the lease `email` holds (an update of the existing row, never
        one that re-creates it); False when the lease was lost meanwhile. `verifiable`: whether
        its channel can be asked later whether it delivered (Teams and webhooks cannot)."""
        if state not in EMAIL_STATES or state in (ALERT_PENDING, EMAIL_SENDING):
            raise ValueError(f"an email finishes sent, failed, dropped or throttled, not {state!r}")
        changes = {
            "state": state,
            "sent_at": now,
            "target": cap_text(target, 1024) if target else "",
            "error": cap_text(redact(error), MAX_TEXT_UNITS) if error else "",
            # A sent email is checked again later (`unverified`); the others need not be.
            "verified": state != ALERT_SENT or not verifiable,
        }
        return self._update_email(email, changes) is not None

    def unverified(self, since: datetime, limit: int = 200) -> list[EmailRecord]:
        """Emails sent since `since` whose delivery no later lookup has confirmed yet."""
        rows = self.table.query_entities(
            "RowKey ge @low and RowKey lt @high and state eq @sent and verified eq false and sent_at ge @since",
            parameters={**_EMAIL_RANGE, "sent": ALERT_SENT, "since": since},
        )
        emails = []
        for row in rows:
            emails.append(EmailRecord.from_entity(row))
            if len(emails) >= limit:
                break
        return emails

    def confirm(self, email: EmailRecord, state: str, error: str | None = None) -> bool:
        """What a later lookup found: delivered (`sent`, verified) or failed after all; False when
        the row changed since `email` was read (another timer confirmed it)."""
        changes = {"state": state, "verified": True, "error": cap_text(redact(error), MAX_TEXT_UNITS) if error else ""}
        return self._update_email(email, changes) is not None

    def of_email(self, email: EmailRecord) -> list[AlertRecord]:
        """The alerts an email carried (as its row lists them), in any state."""
        found = (self.get(email.partition, alert_id) for alert_id in email.alert_ids)
        return [alert for alert in found if alert is not None]

    def emails(self, partition: str | None = None) -> list[EmailRecord]:
        if partition is None:
            rows = self.table.query_entities("RowKey ge @low and RowKey lt @high", parameters=_EMAIL_RANGE)
        else:
            rows = self.table.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": _check_partition(partition), **_EMAIL_RANGE},
            )
        return [EmailRecord.from_entity(row) for row in rows]

    # -- retention --------------------------------------------------------------------------

    def purge(self, before: datetime) -> int:
        """Delete finished alerts and emails created before `before` (RUN_RETENTION_DAYS): a
        pending one is kept however old, since it is still owed."""
        rows = self.table.query_entities(
            "created lt @before and state ne @pending and state ne @sending",
            parameters={"before": before, "pending": ALERT_PENDING, "sending": EMAIL_SENDING},
            select=["PartitionKey", "RowKey"],
        )
        return submit_all(self.table, (delete(str(r["PartitionKey"]), str(r["RowKey"])) for r in rows))


# How often a conditional update is retried against a row that keeps changing.
_MAX_ROUNDS = 5
# `email~` … `email\x7f`: every RowKey that starts with the email prefix.
_EMAIL_RANGE = {"low": EMAIL_PREFIX, "high": EMAIL_PREFIX[:-1] + chr(ord(EMAIL_PREFIX[-1]) + 1)}
