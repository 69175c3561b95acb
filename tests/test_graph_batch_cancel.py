"""GraphClient.batch when one `$batch` POST fails: the sibling POSTs are cancelled, not left running."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence

import pytest

from partnerguard.graph.client import BatchResult, GraphClient
from partnerguard.graph.errors import GraphRequestError, Throttled
from partnerguard.graph.requests import PER_USER_MFA_STATE, ApiVersion, GraphRequest
from partnerguard.settings import Settings

TENANT = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
SETTINGS = Settings.from_env(
    {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "11111111-2222-4333-8444-555555555555", "AZURE_CLIENT_SECRET": "x"}
)
# Three chunks of 20 (the directory class allows 20 per batch), all in flight at once.
REQUESTS = [PER_USER_MFA_STATE.request(user_id=f"00000000-0000-4000-8000-{i:012d}") for i in range(60)]


async def batch_with_failing_chunks(failing: set[int]) -> tuple[BaseException, list[str], float]:
    """Run `batch` where the chunks starting at the indices in `failing` fail fast and the others
    hang; return what `batch` raised, what became of the hanging chunks, and how long it took."""
    fates: list[str] = []
    async with GraphClient(SETTINGS, TENANT) as client:

        async def fake_run_batch(
            requests: Sequence[GraphRequest], chunk: list[int], version: ApiVersion, results: list[BatchResult | None]
        ) -> None:
            if chunk[0] in failing:
                await asyncio.sleep(0.01)
                raise (GraphRequestError if chunk[0] == 0 else Throttled)("X", f"chunk {chunk[0]} failed", 500)
            try:
                await asyncio.sleep(30)
                fates.append("finished")
            except asyncio.CancelledError:
                fates.append("cancelled")
                raise

        client._run_batch = fake_run_batch  # type: ignore[method-assign]
        started = time.monotonic()
        with pytest.raises(BaseException) as caught:
            await client.batch(REQUESTS)
        # What had become of the siblings by the time batch() raised (later, closing the client
        # or the event loop would cancel them anyway).
        return caught.value, list(fates), time.monotonic() - started


def test_one_failed_chunk_cancels_its_siblings_and_raises_itself() -> None:
    raised, fates, seconds = asyncio.run(batch_with_failing_chunks({0}))
    assert isinstance(raised, GraphRequestError)  # the error itself, not an ExceptionGroup
    assert fates == ["cancelled", "cancelled"]  # already stopped when batch() raised
    assert seconds < 5


def test_two_failed_chunks_raise_one_and_leave_no_exception_unretrieved() -> None:
    unretrieved: list[object] = []

    async def main() -> tuple[BaseException, list[str], float]:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unretrieved.append(context))
        return await batch_with_failing_chunks({0, 20})

    raised, fates, _ = asyncio.run(main())
    assert isinstance(raised, GraphRequestError | Throttled)
    assert fates == ["cancelled"]
    gc.collect()
    assert unretrieved == []
