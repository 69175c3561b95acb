"""A tenant's sign-in log generated on demand: a week of 100,000 users is 22 million sign-ins,
which no test process can hold, so the log holds none of them.

**Model.** The log is a set of *populations*: sign-ins that share everything a filter can ask
about (event type, `clientAppUsed`, `authenticationRequirement`, `status/errorCode`, app) and
differ only in when they happened, who signed in and their ids. Each population has a rate per
second. Time is cut into one-minute buckets (absolute: minute n since the epoch), and the number
of sign-ins of a population in bucket n is the difference of floor(rate · 60 · n) between
consecutive minutes: exact totals, no randomness, countable without generating anything. Only
when a bucket's rows are needed are they generated, from a random generator seeded by (seed,
population, minute): the same rows every time, in every process.

**Queries.** A page is answered the way Graph's own log is read: newest first, the query's
`$filter` applied, `$top` rows, a `$skiptoken` to continue. The rows of a bucket are selected by
the caller's function (the simulator's one filter/search/order pipeline, `GraphService._select_rows`),
so the log carries no OData logic of its own. What it adds is pruning, so that a query for the
few legacy sign-ins of a week does not generate the 22 million others:

- the query's time range, read from its `createdDateTime ge/gt/le/lt/eq` comparisons when the
  filter is a plain conjunction (no `or`, no `not`); otherwise every bucket of the log is read;
- a population is read only when a *probe* (one of its rows, timed inside the range) passes
  the selection: valid when every property the filter names is one the population fixes, or the
  time. A filter that names anything else (a user, an id) gets every population, row by row.

A skiptoken's position is (minute, offset within that minute's selected rows), so paging never
re-generates what it has passed. **Ground truth** comes from the same rows: `rows_matching` yields
the rows of the populations a rule can match (see `rule_populations`), for
`testbed.simulator.ground_truth`.
"""

from __future__ import annotations

import math
import random
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from testbed.simulator import ground_truth
from testbed.simulator.generate import (
    EXCHANGE_ONLINE_APP_ID,
    INTERACTIVE_PER_USER_HOUR,
    NON_INTERACTIVE_PER_USER_HOUR,
    iso,
    make_sign_in,
)
from testbed.simulator.odata_filter import Filter
from testbed.simulator.scenario import JsonObject

if TYPE_CHECKING:
    from testbed.simulator.scenario import TenantScenario

BUCKET_SECONDS = 60
# A position packs (minute, offset within the minute's selected rows) into one integer.
_OFFSET_BITS = 24
# Rows kept generated (least recently used minutes go first): a page of the newest minutes is
# usually asked for by several streams and tenants in a row.
CACHED_ROWS = 120_000

INTERACTIVE = "interactiveUser"
NON_INTERACTIVE = "nonInteractiveUser"
# The properties a population fixes (every row of it has the same value): filters on these, on
# the event type and on the time can be decided by one probe row.
POPULATION_PROPERTIES = frozenset(
    {
        "signineventtypes",
        "clientappused",
        "authenticationrequirement",
        "status/errorcode",
        "appid",
        "appdisplayname",
        "isinteractive",
        "authenticationprotocol",
        "conditionalaccessstatus",
    }
)
TIME_PROPERTY = "createddatetime"
_MODERN_CLIENTS = {INTERACTIVE: "Browser", NON_INTERACTIVE: "Mobile Apps and Desktop clients"}
# Legacy clients (clientAppUsed as Microsoft documents them) and how their sign-ins authenticate:
# basic authentication (IMAP4, POP3, SMTP AUTH) cannot do MFA; Exchange ActiveSync with modern
# authentication can.
LEGACY_CLIENTS: tuple[tuple[str, str], ...] = (
    ("Exchange ActiveSync", "multiFactorAuthentication"),
    ("IMAP4", "singleFactorAuthentication"),
    ("POP3", "singleFactorAuthentication"),
    ("Authenticated SMTP", "singleFactorAuthentication"),
)
PASSWORD_SPRAY_ERROR = 50126  # "Invalid username or password": failed, never a finding
OUTLOOK_MOBILE_APP_ID = "27922004-5251-4030-b22d-91ecd9a37ea4"


@dataclass(frozen=True)
class SignInProfile:
    """How a tenant signs in. Shares are of all sign-ins of each event type."""

    interactive_per_user_hour: float = INTERACTIVE_PER_USER_HOUR
    non_interactive_per_user_hour: float = NON_INTERACTIVE_PER_USER_HOUR
    legacy_share: float = 0.0  # successful sign-ins through a legacy client
    single_factor_share: float = 0.0  # successful single-factor sign-ins through modern clients
    failed_share: float = 0.0  # failed legacy attempts (a password spray)
    # The users behind the legacy and the single-factor sign-ins: a few, not everyone.
    legacy_users_share: float = 0.01
    single_factor_users_share: float = 0.02


# Issue 16's tenants: a compliant one (MFA for everything, modern clients only) and one with 2 %
# legacy and a few percent single-factor sign-ins.
COMPLIANT = SignInProfile()
NON_COMPLIANT = SignInProfile(legacy_share=0.02, single_factor_share=0.03, failed_share=0.005)
# The same legacy share from far fewer accounts (50 and 100 in 100,000: mail clients and devices
# polling IMAP/POP/SMTP): as many sign-ins, far fewer subjects. The benchmark's first scan uses
# it, because every subject a page touches is a row written to storage per page, and Azurite's
# writes would otherwise take longer than the whole benchmark (docs/performance.md).
NON_COMPLIANT_FEW_ACCOUNTS = SignInProfile(
    legacy_share=0.02,
    single_factor_share=0.01,
    failed_share=0.005,
    legacy_users_share=0.0005,
    single_factor_users_share=0.001,
)
PROFILES = {
    "compliant": COMPLIANT,
    "non_compliant": NON_COMPLIANT,
    "non_compliant_few_accounts": NON_COMPLIANT_FEW_ACCOUNTS,
}


@dataclass(frozen=True)
class Population:
    index: int
    event_type: str
    client_app_used: str
    authentication_requirement: str
    error_code: int
    app_id: str
    app_display_name: str
    per_bucket: float  # expected sign-ins per one-minute bucket
    users: tuple[JsonObject, ...]

    def count(self, bucket: int) -> int:
        return math.floor(self.per_bucket * (bucket + 1)) - math.floor(self.per_bucket * bucket)

    @property
    def ordinary(self) -> bool:
        """Successful multi-factor sign-ins through a modern client: no rule matches them."""
        return (
            self.error_code == 0
            and self.authentication_requirement == "multiFactorAuthentication"
            and self.client_app_used in _MODERN_CLIENTS.values()
        )


def _populations(users: Sequence[JsonObject], profile: SignInProfile) -> list[Population]:
    enabled = [user for user in users if user.get("accountEnabled", True)]
    if not enabled:
        return []
    legacy_users = tuple(enabled[:: max(1, round(1 / profile.legacy_users_share))]) if profile.legacy_share else ()
    # Offset by one so the two groups barely overlap.
    step = max(1, round(1 / profile.single_factor_users_share)) if profile.single_factor_share else 0
    single_users = tuple(enabled[1::step]) if step else ()
    everyone = tuple(enabled)
    shapes: list[tuple[str, str, str, int, str, str, float, tuple[JsonObject, ...]]] = []
    for event_type, per_user_hour in (
        (INTERACTIVE, profile.interactive_per_user_hour),
        (NON_INTERACTIVE, profile.non_interactive_per_user_hour),
    ):
        per_bucket = len(enabled) * per_user_hour * BUCKET_SECONDS / 3600
        modern = _MODERN_CLIENTS[event_type]
        ordinary = 1.0 - profile.legacy_share - profile.single_factor_share - profile.failed_share
        shapes.append(
            (
                event_type,
                modern,
                "multiFactorAuthentication",
                0,
                EXCHANGE_ONLINE_APP_ID,
                "Office 365 Exchange Online",
                per_bucket * ordinary,
                everyone,
            )
        )
        for client, requirement in LEGACY_CLIENTS if legacy_users else ():
            share = profile.legacy_share / len(LEGACY_CLIENTS)
            shapes.append(
                (
                    event_type,
                    client,
                    requirement,
                    0,
                    EXCHANGE_ONLINE_APP_ID,
                    "Office 365 Exchange Online",
                    per_bucket * share,
                    legacy_users,
                )
            )
        if single_users:
            shapes.append(
                (
                    event_type,
                    modern,
                    "singleFactorAuthentication",
                    0,
                    OUTLOOK_MOBILE_APP_ID,
                    "Outlook Mobile",
                    per_bucket * profile.single_factor_share,
                    single_users,
                )
            )
        if profile.failed_share:
            shapes.append(
                (
                    event_type,
                    "IMAP4",
                    "singleFactorAuthentication",
                    PASSWORD_SPRAY_ERROR,
                    EXCHANGE_ONLINE_APP_ID,
                    "Office 365 Exchange Online",
                    per_bucket * profile.failed_share,
                    everyone,
                )
            )
    return [Population(index, *shape) for index, shape in enumerate(shapes) if shape[6] > 0]


_TIME_COMPARISON = re.compile(
    r"\bcreatedDateTime\s+(eq|ge|gt|le|lt)\s+(\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)", re.IGNORECASE
)
_NOT_A_CONJUNCTION = re.compile(r"\bor\b|\bnot\b", re.IGNORECASE)


def time_bounds(text: str) -> tuple[datetime | None, datetime | None] | None:
    """The instants (inclusive, to the second) a conjunctive filter's createdDateTime
    comparisons allow, None for either side it leaves open; None when the filter is not a plain
    conjunction, so that its time terms cannot be read off it. Only for pruning: the rows read are
    still selected by the real filter."""
    if _NOT_A_CONJUNCTION.search(_strip_literals(text)):
        return None
    low: datetime | None = None
    high: datetime | None = None
    for operator, literal in _TIME_COMPARISON.findall(text):
        moment = datetime.fromisoformat(literal.replace("Z", "+00:00")).astimezone(UTC)
        floor, ceiling = moment.replace(microsecond=0), moment
        if moment.microsecond:
            ceiling = floor + timedelta(seconds=1)
        lower = {"ge": ceiling if moment.microsecond else floor, "gt": floor + timedelta(seconds=1), "eq": floor}
        upper = {"le": floor, "lt": ceiling - timedelta(seconds=1), "eq": floor}
        operator = operator.lower()
        if operator in lower:
            low = lower[operator] if low is None else max(low, lower[operator])
        if operator in upper:
            high = upper[operator] if high is None else min(high, upper[operator])
    return low, high


def _strip_literals(text: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", text)


Select = Callable[[list[JsonObject]], list[JsonObject]]


class LazySignInLog:
    """The sign-ins of `users` from `start` (inclusive) to `end` (exclusive), both rounded down
    to the minute, shaped by `profile`."""

    def __init__(
        self,
        users: Sequence[JsonObject],
        home_tenant_id: str,
        start: datetime,
        end: datetime,
        profile: SignInProfile = COMPLIANT,
        seed: int = 1,
    ) -> None:
        self.home_tenant_id = home_tenant_id
        self.first_bucket = math.floor(start.timestamp() / BUCKET_SECONDS)
        self.end_bucket = math.floor(end.timestamp() / BUCKET_SECONDS)
        self.profile = profile
        self.seed = seed
        self.populations = _populations(users, profile)
        self._cache: OrderedDict[tuple[int, tuple[int, ...]], list[JsonObject]] = OrderedDict()
        self._cached_rows = 0
        self._lock = threading.Lock()

    # -- counting -------------------------------------------------------------------------------

    def count(self, since: datetime, until: datetime, event_type: str | None = None) -> int:
        """Sign-ins with since <= createdDateTime < until (whole minutes), of one event type or all."""
        low = max(self.first_bucket, math.floor(since.timestamp() / BUCKET_SECONDS))
        high = min(self.end_bucket, math.floor(until.timestamp() / BUCKET_SECONDS))
        total = 0
        for population in self.populations:
            if event_type is None or population.event_type == event_type:
                total += math.floor(population.per_bucket * high) - math.floor(population.per_bucket * low)
        return max(0, total)

    # -- rows ----------------------------------------------------------------------------------

    def _generate(self, population: Population, bucket: int) -> list[JsonObject]:
        count = population.count(bucket)
        if not count:
            return []
        rng = random.Random(f"{self.seed}|{population.index}|{bucket}")
        base = datetime.fromtimestamp(bucket * BUCKET_SECONDS, UTC)
        users = population.users
        rows: list[JsonObject] = []
        for _ in range(count):
            created = base + timedelta(seconds=rng.randrange(BUCKET_SECONDS))
            user = users[rng.randrange(len(users))]
            rows.append(
                make_sign_in(
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    iso(created),
                    user,
                    home_tenant_id=self.home_tenant_id,
                    app_id=population.app_id,
                    app_display_name=population.app_display_name,
                    client_app_used=population.client_app_used,
                    authentication_requirement=population.authentication_requirement,
                    event_type=population.event_type,
                    error_code=population.error_code,
                    failure_reason="Invalid username or password." if population.error_code else "Other.",
                )
            )
        return rows

    def bucket_rows(self, bucket: int, populations: Sequence[Population]) -> list[JsonObject]:
        """The rows of `populations` in one minute, newest first (ties in generation order)."""
        key = (bucket, tuple(population.index for population in populations))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        rows = [row for population in populations for row in self._generate(population, bucket)]
        rows.sort(key=lambda row: str(row["createdDateTime"]), reverse=True)
        with self._lock:
            self._cache[key] = rows
            self._cached_rows += len(rows)
            while self._cached_rows > CACHED_ROWS and len(self._cache) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._cached_rows -= len(dropped)
        return rows

    def _probe(self, population: Population, moment: datetime) -> JsonObject:
        return make_sign_in(
            "00000000-0000-4000-8000-000000000000",
            iso(moment),
            population.users[0],
            home_tenant_id=self.home_tenant_id,
            app_id=population.app_id,
            app_display_name=population.app_display_name,
            client_app_used=population.client_app_used,
            authentication_requirement=population.authentication_requirement,
            event_type=population.event_type,
            error_code=population.error_code,
        )

    # -- queries -------------------------------------------------------------------------------

    def plan(self, select: Select, query: Filter | None) -> tuple[int, int, list[Population], bool]:
        """The minutes [low, high) a query can match, the populations it can match in them, and
        whether those populations match *every* row of the minutes strictly inside the range
        (decided by probes), so that counting needs no generation."""
        low, high = self.first_bucket, self.end_bucket
        text = query.text if query is not None else ""
        bounds = time_bounds(text) if query is not None else (None, None)
        named = {clause.path.lower() for clause in query.clauses} if query is not None else set()
        probing = bounds is not None and named <= POPULATION_PROPERTIES | {TIME_PROPERTY}
        if bounds is not None:
            since, until = bounds
            if since is not None:
                low = max(low, math.floor(since.timestamp() / BUCKET_SECONDS))
            if until is not None:
                high = min(high, math.floor(until.timestamp() / BUCKET_SECONDS) + 1)
            if since is not None and until is not None and since > until:
                return low, low, [], True
        if high <= low:
            return low, low, [], True
        if not probing or bounds is None:
            return low, high, list(self.populations), False
        since, until = bounds
        moment = since or until or datetime.fromtimestamp(low * BUCKET_SECONDS, UTC)
        candidates = [population for population in self.populations if select([self._probe(population, moment)])]
        return low, high, candidates, True

    def page(
        self, select: Select, query: Filter | None, position: int | None, top: int
    ) -> tuple[list[JsonObject], int | None]:
        """Up to `top` selected rows from `position` (None: the newest), and the position after
        them, or None when no selected row is left (so a last page has no nextLink)."""
        low, high, populations, probed = self.plan(select, query)
        if not populations:
            return [], None
        bucket, offset = (high - 1, 0) if position is None else divmod(position, 1 << _OFFSET_BITS)
        out: list[JsonObject] = []
        while bucket >= low:
            if any(population.count(bucket) for population in populations):
                if len(out) == top and probed and low < bucket < high - 1:
                    # A minute wholly inside the range whose populations all pass the probe:
                    # every row of it is selected, no need to generate it to know one is left.
                    return out, (bucket << _OFFSET_BITS) + offset
                selected = select(self.bucket_rows(bucket, populations))
                if len(out) == top:
                    if len(selected) > offset:
                        return out, (bucket << _OFFSET_BITS) + offset
                else:
                    taken = selected[offset : offset + top - len(out)]
                    out.extend(taken)
                    if offset + len(taken) < len(selected):
                        return out, (bucket << _OFFSET_BITS) + offset + len(taken)
            bucket -= 1
            offset = 0
        return out, None

    def rows_matching(self, populations: Sequence[Population]) -> Iterator[JsonObject]:
        """Every row of `populations`, minute by minute (for ground truth: generated, never kept)."""
        for bucket in range(self.end_bucket - 1, self.first_bucket - 1, -1):
            for population in populations:
                yield from self._generate(population, bucket)

    def rule_populations(self) -> list[Population]:
        """Every population but the ordinary ones (successful, multi-factor, modern client),
        which no sign-in rule matches. Failed sign-ins come along: the oracle drops them itself."""
        return [population for population in self.populations if not population.ordinary]


@dataclass(frozen=True)
class _RowsOnly:
    """What the oracle reads of a tenant for the sign-in rules: its sign-ins."""

    sign_ins: Iterable[JsonObject]


def sign_in_subjects(log: LazySignInLog, rule: str, now: datetime, window_hours: int) -> set[str]:
    """The subjects the oracle (`testbed.simulator.ground_truth`, which shares nothing with the
    checks) finds for `rule` in the window ending at `now`, over the generated rows: only the
    populations a rule can match are generated (ordinary sign-ins match none)."""
    rows = _RowsOnly(log.rows_matching(log.rule_populations()))
    return ground_truth.sign_in_subjects(cast("TenantScenario", rows), rule, now, window_hours)
