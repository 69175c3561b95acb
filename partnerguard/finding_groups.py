"""Findings grouped by what is wrong: one sentence, then the subjects it applies to.

A first scan of a real tenant finds the same thing many times: twenty users whose per-user MFA
state is 'disabled' get twenty findings with the same sentence; fifteen single-factor sign-ins
differ only in the app, the count and the date. Listed one by one they bury what is wrong. The
digest email and the terminal table both show each *kind* of finding once, with its subjects.

What makes two findings "the same kind" is read from their `detail` text, because the checks
write one sentence per kind and put the particulars of each subject into it: quoted names
('Office 365'), dates, numbers, and sometimes the subject's own name. Those particulars are
masked; findings whose masked sentences are equal form one group. The group's sentence keeps
every particular its members share and shows the ones that differ as "…"; each member carries
its own differing values (`particulars`), so nothing a finding said is lost. A group of one is
its finding's sentence, unchanged.

Within a group, administrators come first (a compromised admin costs the most), then by name.
Whether a user is an administrator is only known where a check recorded it: `mfa.registration`
writes `isAdmin` into each finding's evidence, and `admin_user_ids` collects those users from a
whole report so that the same user is put first in every check's groups. Users no check marked
are ordered by name, not assumed to be ordinary users (they are simply not known to be admins).

Pure text handling: no I/O, nothing tenant-controlled is trusted or interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# What a differing particular is shown as in a group's sentence.
ELLIPSIS = "…"

# The particulars a check writes into a sentence. Anything else is the wording of the kind of
# finding.
_PARTICULAR = re.compile(
    r"'[^'\n]*'"  # a quoted name: 'Office 365', 'IMAP4', a secret's display name
    r"|[\w.+#-]+@[\w-]+(?:\.[\w-]+)+"  # a user principal name (a guest's carries #EXT#)
    r"|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?"  # a date, with a time or not
    r"|\d+(?:\.\d+)?"  # a count, a number of days
)
# A subject's name is masked only when long enough not to match ordinary words by accident.
_MIN_MASKED_NAME = 3

_LITERAL, _VALUE, _NAME = "literal", "value", "name"


@dataclass(frozen=True)
class GroupMember(Generic[T]):
    """One finding in a group: the caller's item, as the group shows it."""

    item: T
    name: str
    is_admin: bool
    # This member's values where the group's sentence shows "…", in the sentence's order.
    particulars: tuple[str, ...]


@dataclass(frozen=True)
class DetailGroup(Generic[T]):
    """Findings that say the same thing about different subjects."""

    sentence: str
    members: tuple[GroupMember[T], ...]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def admins(self) -> int:
        return sum(1 for m in self.members if m.is_admin)


def _segments(detail: str, name: str) -> list[tuple[str, str]]:
    """`detail` cut into wording, particulars and occurrences of the subject's own name."""
    pieces: list[tuple[str, str]] = []
    parts = detail.split(name) if len(name) >= _MIN_MASKED_NAME else [detail]
    for index, part in enumerate(parts):
        if index:
            pieces.append((_NAME, name))
        position = 0
        for match in _PARTICULAR.finditer(part):
            if match.start() > position:
                pieces.append((_LITERAL, part[position : match.start()]))
            pieces.append((_VALUE, match.group(0)))
            position = match.end()
        if position < len(part):
            pieces.append((_LITERAL, part[position:]))
    return pieces


def _shape(segments: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The sentence with its particulars masked: equal shapes are the same kind of finding."""
    return tuple((kind, text if kind == _LITERAL else "") for kind, text in segments)


def group_by_detail(
    items: Iterable[T],
    *,
    detail: Callable[[T], str],
    name: Callable[[T], str],
    is_admin: Callable[[T], bool] = lambda _item: False,
) -> list[DetailGroup[T]]:
    """`items` grouped by what their detail says, groups in the order their first item comes.

    The caller orders `items` (most severe first, say) and decides what else must be equal
    within a group (a severity, a resolution) by grouping those first.
    """
    shapes: dict[tuple[tuple[str, str], ...], list[tuple[T, list[tuple[str, str]]]]] = {}
    for item in items:
        segments = _segments(detail(item), name(item))
        shapes.setdefault(_shape(segments), []).append((item, segments))

    groups = []
    for entries in shapes.values():
        segment_count = len(entries[0][1])
        shared = [len({entry[1][i][1] for entry in entries}) == 1 for i in range(segment_count)]
        words = [text if shared[index] else ELLIPSIS for index, (_, text) in enumerate(entries[0][1])]
        differing = [i for i in range(segment_count) if not shared[i] and entries[0][1][i][0] == _VALUE]
        members = [
            GroupMember(
                item=item,
                name=name(item),
                is_admin=is_admin(item),
                particulars=tuple(segments[i][1] for i in differing),
            )
            for item, segments in entries
        ]
        # Stable: equal names keep the caller's order.
        members.sort(key=lambda m: (not m.is_admin, m.name.casefold()))
        groups.append(DetailGroup(sentence="".join(words), members=tuple(members)))
    return groups


def user_object_id(subject_type: str, subject_id: str) -> str | None:
    """The user a finding is about, when it is about a user (SPEC §1 subject ids start with it)."""
    if subject_type != "user":
        return None
    return subject_id.split("|", 1)[0].lower()


def admin_user_ids(findings: Iterable[tuple[str, str, Mapping[str, Any]]]) -> frozenset[str]:
    """The users some finding's evidence marks as holding an administrator role.

    `findings` are (subject type, subject id, evidence). Only an explicit `isAdmin: true` counts.
    """
    admins = set()
    for subject_type, subject_id, evidence in findings:
        user = user_object_id(subject_type, subject_id)
        if user is not None and evidence.get("isAdmin") is True:
            admins.add(user)
    return frozenset(admins)
