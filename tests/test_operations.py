"""Listing and purging sagas: full pages, opaque cursors, Query only, careful deletes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from saga_store_pynamo import SagaPage, SagaValidationError
from tests.conftest import RequestRecorder
from tests.models import OrderSaga, PaymentSaga

NAME = "OrderSaga"


def populate(store: Any, active: int, completed: int) -> tuple[list[str], list[str]]:
    """Insert sagas with ids in a known order, completed ones interleaved."""
    active_ids, completed_ids = [], []
    for i in range(active + completed):
        state = OrderSaga(saga_id=f"saga-{i:03d}", total_cents=i)
        store.insert(NAME, f"order-{i}", state)
        if (i % 4 == 1 and len(completed_ids) < completed) or len(active_ids) >= active:
            state.is_completed = True
            store.update(NAME, state, 0)
            completed_ids.append(state.saga_id)
        else:
            active_ids.append(state.saga_id)
    return active_ids, completed_ids


def read_earlier(monkeypatch: pytest.MonkeyPatch, store: Any, stale: OrderSaga) -> None:
    """Make the purge's listing return ``stale``, as if it had read the saga earlier."""

    def listing(*args: Any, **kwargs: Any) -> Any:
        return SagaPage([stale], None)
        yield  # a generator, as the store's steps are

    monkeypatch.setattr(store, "_find_by_name", listing)


@pytest.fixture
def listing_store(make_store: Any) -> Any:
    return make_store(models={"PaymentSaga": PaymentSaga})


def test_pages_cover_every_saga_once_in_id_order(
    listing_store: Any, recorder: RequestRecorder
) -> None:
    active, completed = populate(listing_store, active=5, completed=2)
    listing_store.insert("PaymentSaga", "p", PaymentSaga(saga_id="saga-000"))
    recorder.take()

    seen, cursor, pages = [], None, 0
    while True:
        page = listing_store.find_by_name(NAME, limit=3, cursor=cursor)
        pages += 1
        assert len(page.items) <= 3
        seen += [s.saga_id for s in page.items]
        if page.cursor is None:
            break
        assert len(page.items) == 3
        cursor = page.cursor

    assert seen == sorted(active + completed)
    assert pages == 3
    assert set(recorder.take()) == {"Query"}


def test_filtered_pages_are_full(listing_store: Any) -> None:
    active, completed = populate(listing_store, active=12, completed=4)

    first = listing_store.find_by_name(NAME, completed=True, limit=3)
    assert [s.saga_id for s in first.items] == completed[:3]
    assert first.cursor is not None
    rest = listing_store.find_by_name(NAME, completed=True, limit=3, cursor=first.cursor)
    assert [s.saga_id for s in rest.items] == completed[3:]
    assert rest.cursor is None

    active_page = listing_store.find_by_name(NAME, completed=False, limit=100)
    assert [s.saga_id for s in active_page.items] == active
    assert all(not s.is_completed for s in active_page.items)


def test_iter_by_name_yields_everything(listing_store: Any) -> None:
    active, completed = populate(listing_store, active=7, completed=3)
    every = [s.saga_id for s in listing_store.iter_by_name(NAME, page_size=2)]
    assert every == sorted(active + completed)
    done = [s.saga_id for s in listing_store.iter_by_name(NAME, completed=True, page_size=2)]
    assert done == completed


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"completed": "yes"}, "completed"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_bad_listing_arguments(
    listing_store: Any, recorder: RequestRecorder, options: dict[str, Any], field: str
) -> None:
    recorder.take()
    with pytest.raises(SagaValidationError) as caught:
        listing_store.find_by_name(NAME, **options)
    assert caught.value.field == field
    assert recorder.take() == []


def test_a_cursor_of_another_saga_name_is_refused(listing_store: Any) -> None:
    populate(listing_store, active=3, completed=0)
    page = listing_store.find_by_name(NAME, limit=1)
    with pytest.raises(SagaValidationError, match="another saga name"):
        listing_store.find_by_name("PaymentSaga", cursor=page.cursor)


# -- purge ------------------------------------------------------------------------------------


def test_purge_deletes_completed_sagas_updated_before_the_cutoff(listing_store: Any) -> None:
    active, _completed = populate(listing_store, active=4, completed=3)
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    earlier = datetime.now(timezone.utc) - timedelta(days=1)

    assert listing_store.purge_completed(NAME, before=earlier) == 0
    progress: list[tuple[int, int]] = []
    assert listing_store.purge_completed(NAME, before=later, dry_run=True) == 3
    assert len(list(listing_store.iter_by_name(NAME))) == 7  # a dry run deletes nothing

    deleted = listing_store.purge_completed(
        NAME, before=later, on_progress=lambda m, d: progress.append((m, d))
    )

    assert deleted == 3
    assert progress[-1] == (3, 3)
    assert [s.saga_id for s in listing_store.iter_by_name(NAME)] == active


def test_purge_skips_a_saga_changed_since_it_was_read(
    listing_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = OrderSaga(saga_id="moving")
    listing_store.insert(NAME, "c", state)
    state.is_completed = True
    listing_store.update(NAME, state, 0)
    stale = listing_store.get_by_id(NAME, "moving")
    state.status = "reopened"
    state.is_completed = False  # someone re-opened it after the purge read it
    listing_store.update(NAME, state, 1)
    read_earlier(monkeypatch, listing_store, stale)

    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert listing_store.purge_completed(NAME, before=later) == 0
    assert listing_store.get_by_id(NAME, "moving").status == "reopened"


def test_purge_never_deletes_a_saga_inserted_again_under_a_read_id(
    listing_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The purge read a completed saga at version 1; it was deleted, and a new saga under the
    # same id (unique mode, a caller's id) reached version 1 and completed too.
    first = OrderSaga(saga_id="reused", status="first")
    listing_store.insert(NAME, "c", first)
    first.is_completed = True
    listing_store.update(NAME, first, 0)
    stale = listing_store.get_by_id(NAME, "reused")
    listing_store.delete(NAME, "reused")
    second = OrderSaga(saga_id="reused", status="second")
    listing_store.insert(NAME, "c", second)
    second.is_completed = True
    listing_store.update(NAME, second, 0)
    read_earlier(monkeypatch, listing_store, stale)

    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert listing_store.purge_completed(NAME, before=later) == 0
    assert listing_store.get_by_id(NAME, "reused").status == "second"


def test_purge_needs_an_aware_cutoff(listing_store: Any, recorder: RequestRecorder) -> None:
    recorder.take()
    with pytest.raises(SagaValidationError) as caught:
        listing_store.purge_completed(NAME, before=datetime(2026, 1, 1))
    assert caught.value.field == "before"
    assert recorder.take() == []
