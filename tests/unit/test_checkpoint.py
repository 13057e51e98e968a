"""Checkpoint logic: gaps left by late commits, their filling and expiry, voids, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from passport_sync import checkpoint as cp_module
from passport_sync.checkpoint import (
    MAX_GAP_RANGES,
    ChangesDigest,
    Checkpoint,
    Gap,
    advance,
    advance_voids,
    changes_due,
    changes_unchanged,
    fill_gaps,
    from_document,
    move_back,
    next_void_read_from,
    remember_changes,
    to_document,
    void_read_from,
)

T0 = datetime(2025, 11, 6, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
WINDOW = timedelta(hours=24)


class TestAdvance:
    def test_contiguous_ids_leave_no_gap(self) -> None:
        cp = advance(Checkpoint(last_obs_id=10), [11, 12, 13], T0)
        assert cp == Checkpoint(last_obs_id=13, gaps=())

    def test_missing_ids_become_gaps_with_the_time_noticed(self) -> None:
        cp = advance(Checkpoint(last_obs_id=10), [11, 14, 15, 20], T0)
        assert cp.last_obs_id == 20
        assert cp.gaps == (Gap(12, 13, T0), Gap(16, 19, T0))
        assert cp.gap_ids == 6

    def test_gap_right_after_the_checkpoint(self) -> None:
        cp = advance(Checkpoint(last_obs_id=10), [12], T0)
        assert cp.gaps == (Gap(11, 11, T0),)

    def test_existing_gaps_are_kept(self) -> None:
        start = Checkpoint(last_obs_id=10, gaps=(Gap(3, 4, T0),))
        cp = advance(start, [12], T1)
        assert cp.gaps == (Gap(3, 4, T0), Gap(11, 11, T1))

    def test_the_ids_below_the_first_id_a_feed_reads_are_a_gap(self) -> None:
        # A transaction open during the first read may commit one of them afterwards.
        cp = advance(Checkpoint(), [500, 501], T0)
        assert cp == Checkpoint(last_obs_id=501, gaps=(Gap(1, 499, T0),))

    def test_a_first_read_starting_at_id_one_leaves_no_gap(self) -> None:
        assert advance(Checkpoint(), [1, 2, 3], T0) == Checkpoint(last_obs_id=3, gaps=())

    def test_gaps_within_the_first_batch_are_recorded(self) -> None:
        cp = advance(Checkpoint(), [500, 503], T0)
        assert cp.last_obs_id == 503
        assert cp.gaps == (Gap(1, 499, T0), Gap(501, 502, T0))

    def test_a_late_commit_below_the_first_id_fills_its_gap(self) -> None:
        first = advance(Checkpoint(), [5, 6], T0)
        cp = fill_gaps(first, [3], T1, window=WINDOW)
        assert cp.gaps == (Gap(1, 2, T0), Gap(4, 4, T0))
        assert cp.last_obs_id == 6
        assert fill_gaps(cp, [], T0 + WINDOW + timedelta(seconds=1), window=WINDOW).gaps == ()

    def test_a_checkpoint_moved_back_to_the_start_reads_gaps_from_id_one_again(self) -> None:
        moved = move_back(Checkpoint(last_obs_id=40, gaps=(Gap(30, 31, T0),)), 0, datetime(2025, 1, 1))
        assert moved.last_obs_id == 0
        cp = advance(moved, [3, 4], T1)
        assert cp.gaps == (Gap(1, 2, T1), Gap(30, 31, T0))

    def test_ids_stepping_by_two_as_galera_nodes_write_leave_gaps_between(self) -> None:
        # Another node's id in between may still commit: whatever the step, it is a gap.
        cp = advance(Checkpoint(last_obs_id=3), [5, 7, 11], T0)
        assert cp.last_obs_id == 11
        assert cp.gaps == (Gap(4, 4, T0), Gap(6, 6, T0), Gap(8, 10, T0))

    def test_no_ids_changes_nothing(self) -> None:
        start = Checkpoint(last_obs_id=10, gaps=(Gap(3, 4, T0),), void_watermark=datetime(2025, 1, 1))
        assert advance(start, [], T1) is start

    def test_void_watermark_is_kept(self) -> None:
        start = Checkpoint(last_obs_id=1, void_watermark=datetime(2025, 1, 1))
        assert advance(start, [2], T0).void_watermark == datetime(2025, 1, 1)

    @pytest.mark.parametrize(
        ("last", "ids"),
        [
            (10, [10]),  # not past the checkpoint
            (10, [9]),
            (10, [11, 13, 12]),  # not ascending
            (10, [11, 11]),  # repeated
            (0, [5, 4]),
        ],
    )
    def test_ids_not_ascending_past_the_checkpoint_raise(self, last: int, ids: list[int]) -> None:
        start = Checkpoint(last_obs_id=last)
        with pytest.raises(ValueError, match="ascend"):
            advance(start, ids, T0)
        assert start == Checkpoint(last_obs_id=last)

    def test_gap_count_is_capped(self) -> None:
        # Every other id missing: one single-id gap per pair.
        ids = list(range(2, 2 * (MAX_GAP_RANGES + 50), 2))
        cp = advance(Checkpoint(last_obs_id=1), ids, T0)
        assert len(cp.gaps) == MAX_GAP_RANGES
        assert cp.last_obs_id == ids[-1]
        # Merging never loses a missing id.
        covered = {i for g in cp.gaps for i in range(g.low, g.high + 1)}
        missing = set(range(2, ids[-1])) - set(ids)
        assert missing <= covered
        assert all(g.low <= g.high for g in cp.gaps)
        assert [g.low for g in cp.gaps] == sorted(g.low for g in cp.gaps)


class TestCap:
    def test_merges_the_closest_neighbours_keeping_the_earliest_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cp_module, "MAX_GAP_RANGES", 3)
        start = Checkpoint(last_obs_id=101, gaps=(Gap(10, 10, T0), Gap(100, 100, T0)))
        # New gaps 102 (2 after the gap at 100: the closest pair) and 106..199 (4 after 102).
        cp = advance(start, [103, 104, 105, 200], T1)
        assert cp.gaps == (Gap(10, 10, T0), Gap(100, 102, T0), Gap(106, 199, T1))
        assert cp.last_obs_id == 200

    def test_merges_down_to_the_cap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cp_module, "MAX_GAP_RANGES", 1)
        cp = advance(Checkpoint(last_obs_id=1), [3, 5, 50, 100], T0)
        assert cp.gaps == (Gap(2, 99, T0),)

    def test_at_the_cap_nothing_is_merged(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cp_module, "MAX_GAP_RANGES", 2)
        cp = advance(Checkpoint(last_obs_id=1), [3, 5], T0)
        assert cp.gaps == (Gap(2, 2, T0), Gap(4, 4, T0))


class TestFillGaps:
    def test_found_id_splits_a_range(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(10, 20, T0),))
        cp = fill_gaps(start, [15], T1, window=WINDOW)
        assert cp.gaps == (Gap(10, 14, T0), Gap(16, 20, T0))
        assert cp.last_obs_id == 100

    def test_found_ends_shrink_a_range(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(10, 20, T0),))
        assert fill_gaps(start, [10, 20], T1, window=WINDOW).gaps == (Gap(11, 19, T0),)

    def test_all_found_removes_the_range(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(10, 12, T0), Gap(30, 30, T0)))
        assert fill_gaps(start, [12, 10, 11, 11], T1, window=WINDOW).gaps == (Gap(30, 30, T0),)

    def test_several_ids_in_several_ranges(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(10, 20, T0), Gap(30, 40, T1)))
        cp = fill_gaps(start, [35, 12, 13, 18, 50, 5], T1, window=WINDOW)
        assert cp.gaps == (
            Gap(10, 11, T0),
            Gap(14, 17, T0),
            Gap(19, 20, T0),
            Gap(30, 34, T1),
            Gap(36, 40, T1),
        )
        assert cp.gap_ids == 2 + 4 + 2 + 5 + 5

    def test_ids_outside_every_range_change_nothing(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(10, 20, T0),))
        assert fill_gaps(start, [9, 21, 99], T1, window=WINDOW).gaps == (Gap(10, 20, T0),)

    def test_expired_gaps_are_dropped_even_if_unfilled(self) -> None:
        old = T0 - WINDOW - timedelta(seconds=1)
        start = Checkpoint(last_obs_id=100, gaps=(Gap(1, 5, old), Gap(10, 20, T0)))
        assert fill_gaps(start, [], T0, window=WINDOW).gaps == (Gap(10, 20, T0),)

    def test_gap_exactly_at_the_window_is_kept(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(1, 5, T0 - WINDOW),))
        assert fill_gaps(start, [], T0, window=WINDOW).gaps == (Gap(1, 5, T0 - WINDOW),)

    def test_zero_window_drops_every_older_gap(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(1, 5, T0), Gap(7, 8, T1)))
        assert fill_gaps(start, [], T1, window=timedelta(0)).gaps == (Gap(7, 8, T1),)

    def test_keeps_last_obs_id_and_void_watermark(self) -> None:
        start = Checkpoint(last_obs_id=100, gaps=(Gap(1, 5, T0),), void_watermark=datetime(2025, 1, 1))
        cp = fill_gaps(start, [3], T1, window=WINDOW)
        assert (cp.last_obs_id, cp.void_watermark) == (100, datetime(2025, 1, 1))


class TestVoids:
    def test_no_watermark_reads_every_void(self) -> None:
        assert void_read_from(Checkpoint(), timedelta(minutes=60)) is None

    def test_reads_from_the_watermark_minus_the_lookback(self) -> None:
        cp = Checkpoint(void_watermark=datetime(2025, 11, 6, 10, 0))
        assert void_read_from(cp, timedelta(minutes=60)) == datetime(2025, 11, 6, 9, 0)
        assert void_read_from(cp, timedelta(0)) == datetime(2025, 11, 6, 10, 0)

    def test_advance_voids_sets_the_first_watermark(self) -> None:
        assert advance_voids(Checkpoint(last_obs_id=5), datetime(2025, 1, 1)) == Checkpoint(
            last_obs_id=5, void_watermark=datetime(2025, 1, 1)
        )

    def test_advance_voids_moves_forward_only(self) -> None:
        cp = Checkpoint(void_watermark=datetime(2025, 1, 2))
        assert advance_voids(cp, datetime(2025, 1, 3)).void_watermark == datetime(2025, 1, 3)
        assert advance_voids(cp, datetime(2025, 1, 1)).void_watermark == datetime(2025, 1, 2)
        assert advance_voids(cp, datetime(2025, 1, 2)).void_watermark == datetime(2025, 1, 2)

    def test_advance_voids_with_nothing_changes_nothing(self) -> None:
        cp = Checkpoint(void_watermark=datetime(2025, 1, 2))
        assert advance_voids(cp, None) is cp
        assert advance_voids(Checkpoint(), None) == Checkpoint()


LOOKBACK = timedelta(minutes=60)
WATERMARK = datetime(2025, 11, 6, 9, 0)
SINCE = WATERMARK - LOOKBACK


class TestChangesDigest:
    def test_a_window_is_due_when_its_latest_change_is_in_it(self) -> None:
        assert changes_due(WATERMARK, SINCE)
        assert changes_due(WATERMARK, None)
        assert not changes_due(SINCE - timedelta(seconds=1), SINCE)
        assert not changes_due(None, SINCE)

    def test_the_next_window_starts_from_the_latest_change_capped_at_the_database_clock(self) -> None:
        cp = Checkpoint(void_watermark=WATERMARK)
        assert next_void_read_from(cp, WATERMARK, LOOKBACK) == SINCE  # nothing new: the same window
        later = WATERMARK + timedelta(minutes=5)
        assert next_void_read_from(cp, later, LOOKBACK) == later - LOOKBACK
        now = WATERMARK + timedelta(minutes=1)
        assert next_void_read_from(cp, later, LOOKBACK, not_after=now) == now - LOOKBACK
        assert next_void_read_from(Checkpoint(), WATERMARK, LOOKBACK) == SINCE  # a first run
        assert next_void_read_from(Checkpoint(), None, LOOKBACK) is None

    def test_the_same_window_with_the_same_digest_is_left_unread(self) -> None:
        kept = ChangesDigest(SINCE, 3, 12345)
        cp = Checkpoint(void_watermark=WATERMARK, changes_digest=kept)
        assert changes_unchanged(cp, SINCE, ChangesDigest(SINCE, 3, 12345))
        # MongoDB keeps milliseconds of the moment it stored.
        assert changes_unchanged(cp, SINCE, ChangesDigest(SINCE.replace(microsecond=400), 3, 12345))

    @pytest.mark.parametrize(
        "digest",
        [
            ChangesDigest(SINCE, 4, 12345),  # a row committed late into the window
            ChangesDigest(SINCE, 3, 54321),  # a row unvoided, or edited again
            ChangesDigest(SINCE + timedelta(minutes=1), 3, 12345),  # another window
            None,  # not digested this run
        ],
    )
    def test_anything_else_is_read(self, digest: ChangesDigest | None) -> None:
        cp = Checkpoint(void_watermark=WATERMARK, changes_digest=ChangesDigest(SINCE, 3, 12345))
        assert not changes_unchanged(cp, SINCE, digest)

    def test_a_digest_kept_for_another_window_does_not_leave_this_one_unread(self) -> None:
        # The checkpoint was moved back (reset) after the digest was kept.
        cp = Checkpoint(void_watermark=WATERMARK - LOOKBACK, changes_digest=ChangesDigest(SINCE, 3, 12345))
        assert not changes_unchanged(cp, SINCE - LOOKBACK, ChangesDigest(SINCE, 3, 12345))
        assert not changes_unchanged(Checkpoint(void_watermark=WATERMARK), SINCE, ChangesDigest(SINCE, 3, 12345))

    def test_a_read_keeps_the_digest_only_for_the_window_the_next_run_reads(self) -> None:
        cp = Checkpoint(void_watermark=WATERMARK)
        digest = ChangesDigest(SINCE, 3, 12345)
        assert remember_changes(cp, digest, LOOKBACK).changes_digest == digest
        # The read found a change the digest did not describe: the watermark moved past it.
        moved = advance_voids(cp, WATERMARK + timedelta(minutes=2))
        assert remember_changes(moved, digest, LOOKBACK).changes_digest is None
        assert remember_changes(Checkpoint(void_watermark=WATERMARK, changes_digest=digest), None, LOOKBACK) == cp
        unchanged = Checkpoint(void_watermark=WATERMARK, changes_digest=digest)
        assert remember_changes(unchanged, digest, LOOKBACK) is unchanged

    def test_a_reset_forgets_the_digest(self) -> None:
        cp = Checkpoint(last_obs_id=10, void_watermark=WATERMARK, changes_digest=ChangesDigest(SINCE, 3, 1))
        assert move_back(cp, 5, WATERMARK + timedelta(days=1)).changes_digest is None

    def test_the_digest_is_kept_with_the_checkpoint(self) -> None:
        cp = Checkpoint(last_obs_id=7, void_watermark=WATERMARK, changes_digest=ChangesDigest(SINCE, 3, 4294967295))
        assert to_document(cp)["changesDigest"] == {"since": SINCE, "rows": 3, "crc": 4294967295}
        assert from_document(to_document(cp)) == cp
        assert from_document({"lastObsId": 7, "changesDigest": {"since": SINCE}}).changes_digest is None


class TestDocument:
    def test_to_document_shape(self) -> None:
        cp = Checkpoint(last_obs_id=99, gaps=(Gap(3, 4, T0),), void_watermark=datetime(2025, 1, 2, 3, 4))
        assert to_document(cp) == {
            "lastObsId": 99,
            "gaps": [[3, 4, T0]],
            "voidWatermark": datetime(2025, 1, 2, 3, 4),
            "changesDigest": None,
        }

    def test_round_trip(self) -> None:
        cp = Checkpoint(
            last_obs_id=99,
            gaps=(Gap(3, 4, T0), Gap(50, 60, T1)),
            void_watermark=datetime(2025, 1, 2, 3, 4),
        )
        assert from_document(to_document(cp)) == cp

    def test_naive_datetimes_from_mongodb_are_read_as_utc(self) -> None:
        # MongoDB (tz_aware=False) hands back naive UTC datetimes.
        doc = {
            "lastObsId": 99,
            "gaps": [[3, 4, T0.replace(tzinfo=None)], (50, 60, T1.replace(tzinfo=None))],
            "voidWatermark": datetime(2025, 1, 2, 3, 4),
        }
        cp = from_document(doc)
        assert cp == Checkpoint(
            last_obs_id=99,
            gaps=(Gap(3, 4, T0), Gap(50, 60, T1)),
            void_watermark=datetime(2025, 1, 2, 3, 4),
        )
        assert all(g.since.tzinfo is not None for g in cp.gaps)
        # ... so they can be compared with the aware clock without a TypeError.
        assert fill_gaps(cp, [3], T1, window=WINDOW).gaps == (Gap(4, 4, T0), Gap(50, 60, T1))

    def test_numbers_stored_as_other_types_are_ints(self) -> None:
        cp = from_document({"lastObsId": 7.0, "gaps": [[1.0, 2, T0]]})
        assert cp.last_obs_id == 7
        assert type(cp.last_obs_id) is int
        assert cp.gaps == (Gap(1, 2, T0),)
        assert type(cp.gaps[0].low) is int

    @pytest.mark.parametrize("doc", [None, {}, {"lastObsId": None, "gaps": None}])
    def test_missing_document_is_a_fresh_checkpoint(self, doc: dict[str, object] | None) -> None:
        assert from_document(doc) == Checkpoint()
