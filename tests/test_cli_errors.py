"""The command line's failure paths: an unexpected failure is a failed run (exit 3), never
"findings" (exit 1), and what reaches the terminal is one redacted, inert line."""

from __future__ import annotations

import pytest

from partnerguard import cli

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
# Nothing listens on port 9 of loopback: storage is unreachable.
UNREACHABLE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def test_unreachable_storage_exits_3_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARTNERGUARD_STORAGE", UNREACHABLE)
    code = cli.main(["report", "--tenant", PARTNER, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert "report failed" in err
    assert "Eby8vdM02xNOcqF" not in err
