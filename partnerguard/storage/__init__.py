"""Scan runs, reports and the finding lifecycle in Azure Table Storage.

Design
======

**Tables** (names are a prefix, `pg` by default, plus a suffix):

- `<prefix>runs` — one row per run. PartitionKey: the tenant id; RowKey: the run id. Holds the
  status (`queued`, `running`, `succeeded`, `failed`), `queued_at` / `started` / `finished`, the
  tenant's name and role, the summary, an `error_code` / `error_message`, the alert delivery
  status, `has_report`, and the per-check part of the report (id, title, severity, status,
  reason, reason_code, remediation, check evidence, finding count) as JSON in `checks_<n>`
  properties (split so no property passes 64 KiB). Small: no findings.
- `<prefix>findings` — the finding lifecycle, one row per finding ever seen. PartitionKey: the
  tenant id; RowKey: `<check_id>|<escaped subject_id>`. Holds check_id, the raw subject_id,
  subject_type, subject_name, detail, severity, evidence (JSON), the state (`new`, `open`,
  `excepted`, `resolved`), first_seen, last_seen, resolved_at, first_run_id, last_run_id,
  new_in_run, last_notified, resolved_run_id, resolved_from (the state a resolved row had).
- `<prefix>runfindings` — the findings exactly as each run reported them, so any stored run's
  report can be rebuilt: PartitionKey `<tenant id>_<run id>`, RowKey as in `findings`, plus the
  state the run gave the finding and its position in the report.

**Run ids** match `^[0-9A-Za-z-]{1,64}$`: a 13-digit inverted millisecond timestamp, `-`, and
10 random hex digits. RowKeys sort ascending, so a tenant's newest run is the first row of its
partition: `latest_report` and `list_runs` read one page, never the history. Retention
(`purge_expired`) is a RowKey range for the same reason.

**Lifecycle** (`complete_run`, see `lifecycle.py`): the store reads only the tenant's active
lifecycle rows (`state ne 'resolved'`, selecting five properties), never its history. A current
finding with no active row is `new` (also when it was resolved before: it came back); with an
active row it is `open` and keeps `first_seen`; one under a valid exception is `excepted`; an
`excepted` row whose exception lapsed becomes `new` again, so it alerts. An active row whose
check was assessed in this run (pass or fail) and whose subject is absent becomes `resolved`
(`resolved_at` = the run's finish); a check that was not assessed or errored leaves its rows
untouched. Writes go run findings first, lifecycle second, the run row last: a run reads as
completed only once everything it refers to is stored; a crash in between leaves it `running`
and the next run repairs the lifecycle. A repeat of the run (its message redelivered) also reads
the rows the incomplete attempt resolved (`resolved_run_id` = the run), as active in the state
they had (`resolved_from`): open again when seen, restored when their check was not assessed.

**Batches** (`batching.py`): every multi-row write is an entity-group transaction of one
partition, at most 100 operations and about 3 MiB (the limit is 4 MiB). 10,000 findings are
about 200 transactions (lifecycle + run findings), not 20,000 requests.

**Keys** (`keys.py`): RowKeys forbid `/ \\ # ?` and control characters and hold 1 KiB. Subject
ids are escaped reversibly (those characters, `%` and lone surrogates become `%HH`); an id still
too long keeps a prefix and ends in `%~` + a SHA-256 digest of the raw id, which stays a property.

**Limits** (`limits.py`, `sanitize.py`): a string property holds 64 KiB (32 K UTF-16 units), an
entity 1 MiB, a transaction 4 MiB and 100 operations. Azurite does not enforce all of them, so
the store does, before writing: tenant-controlled names and details are capped (1 K / 4 K UTF-16
units), finding and check evidence to 16 KiB of JSON with `"truncated": true`, subject ids to 4 K
units (with a digest), and every entity is measured before it is sent. Capping happens before the
report is built, so the report `complete_run` returns is the report that reads back.

**Errors**: transient failures (connection errors, 5xx, timeouts) are retried by azure-core's
retry policy; anything that still fails raises. Nothing is swallowed.

**Identity**: a connection string (`UseDevelopmentStorage=true` locally), or in Azure the table
service URI with the user-assigned managed identity (`ManagedIdentityCredential(client_id=...)`).
"""

from partnerguard.storage.keys import finding_row_key, is_run_id, new_run_id
from partnerguard.storage.records import FindingPage, FindingRecord, RunRecord
from partnerguard.storage.store import PurgeCounts, ScanStore

__all__ = [
    "FindingPage",
    "FindingRecord",
    "PurgeCounts",
    "RunRecord",
    "ScanStore",
    "finding_row_key",
    "is_run_id",
    "new_run_id",
]
