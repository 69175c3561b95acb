"""Keys: subject ids become valid, unique, reversible RowKeys; run ids sort newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerguard.storage.keys import (
    MAX_KEY_UNITS,
    check_range,
    escape_key,
    finding_row_key,
    is_run_id,
    new_run_id,
    run_findings_partition,
    run_id_time,
    run_ids_before,
    table_names,
    tenant_key,
    unescape_key,
    utf16_units,
)

FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# Any code point, lone surrogates included (Graph JSON can carry them).
any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=300)
long_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), min_size=200, max_size=2000)


def assert_valid_key(key: str) -> None:
    assert not FORBIDDEN.search(key), key
    assert utf16_units(key) <= MAX_KEY_UNITS
    assert len(key.encode("utf-16-le")) <= 1024  # encodable, and within 1 KiB


@given(any_text)
def test_escape_round_trips(raw: str) -> None:
    assert unescape_key(escape_key(raw)) == raw


@given(any_text | long_text)
def test_finding_row_keys_are_valid(subject_id: str) -> None:
    key = finding_row_key("mfa.registration", subject_id)
    assert_valid_key(key)
    assert key.startswith("mfa.registration|")
    low, high = check_range("mfa.registration")
    assert low <= key < high


@given(any_text | long_text, any_text | long_text)
def test_finding_row_keys_are_unique(first: str, second: str) -> None:
    if first != second:
        assert finding_row_key("c", first) != finding_row_key("c", second)
    else:
        assert finding_row_key("c", first) == finding_row_key("c", second)


@given(any_text)
def test_short_ids_stay_readable_and_reversible(subject_id: str) -> None:
    key = finding_row_key("apps.client-secrets", subject_id)
    if "%~" not in key:
        assert unescape_key(key.split("|", 1)[1]) == subject_id


def test_long_ids_are_shortened_with_a_digest() -> None:
    subject = "a" * 5000
    key = finding_row_key("mfa.registration", subject)
    assert_valid_key(key)
    assert "%~" in key
    assert finding_row_key("mfa.registration", subject + "b") != key
    # An astral-heavy id: each character is two UTF-16 units.
    emoji = "\U0001f600" * 400
    assert_valid_key(finding_row_key("mfa.registration", emoji))


def test_escaping_examples() -> None:
    assert escape_key("a/b\\c#d?e%f") == "a%2Fb%5Cc%23d%3Fe%25f"
    assert escape_key("x\x00\x7f\x9f") == "x%00%7F%C2%9F"
    assert escape_key("policy|report-only") == "policy|report-only"
    assert escape_key("a|b", extra="|") == "a%7Cb"
    assert finding_row_key("check|x", "y") == "check%7Cx|y"


def test_a_crafted_subject_cannot_impersonate_a_shortened_key() -> None:
    long_id = "z" * 1000
    shortened = finding_row_key("c", long_id)
    forged = unescape_key(shortened.split("|", 1)[1])
    assert finding_row_key("c", forged) != shortened


def test_run_ids_match_the_contract_and_sort_newest_first() -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    ids = [new_run_id(start + timedelta(milliseconds=step)) for step in (0, 1, 1000, 86_400_000)]
    assert all(is_run_id(run_id) for run_id in ids)
    assert sorted(ids) == list(reversed(ids))
    assert run_id_time(ids[2]) == start + timedelta(seconds=1)
    assert run_id_time("not-a-run") is None


def test_run_ids_before_bounds_older_runs() -> None:
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    boundary = run_ids_before(moment)
    assert new_run_id(moment - timedelta(milliseconds=1)) >= boundary
    assert new_run_id(moment) < boundary
    assert new_run_id(moment + timedelta(days=1)) < boundary


def test_run_ids_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_run_id(datetime(2025, 1, 1))


@pytest.mark.parametrize("run_id", ["", "a_b", "a/b", "x" * 65, "é"])
def test_invalid_run_ids(run_id: str) -> None:
    assert not is_run_id(run_id)
    with pytest.raises(ValueError):
        run_findings_partition("t", run_id)


def test_tenant_keys_escape_untrusted_ids() -> None:
    guid = "11111111-2222-3333-4444-555555555555"
    assert tenant_key(guid) == guid
    assert_valid_key(tenant_key("evil/../#tenant?\x00"))
    assert "_" not in run_findings_partition(guid, new_run_id(datetime.now(UTC))).split("_", 1)[1]


@settings(max_examples=50)
@given(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,51}", fullmatch=True))
def test_table_names_are_valid(prefix: str) -> None:
    for name in table_names(prefix):
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", name)


@pytest.mark.parametrize("prefix", ["", "1pg", "pg-x", "pg_", "p" * 53])
def test_bad_table_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError):
        table_names(prefix)


def test_a_quote_in_a_subject_id_is_escaped_out_of_the_key() -> None:
    # In a transaction the key travels as an OData literal (RowKey='...'): a raw quote would end it.
    from partnerguard.storage.keys import finding_row_key, unescape_key

    key = finding_row_key("mfa.registration", "o'brien|imap4")
    assert "'" not in key
    assert unescape_key(key.split("|", 1)[1]) == "o'brien|imap4"
    assert key.isascii()
