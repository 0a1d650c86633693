"""Ids sort by creation time, request ids do not repeat across processes, and cursors are
opaque but checked."""

from __future__ import annotations

import os
import re
import time

import pytest

from app.errors import InvalidInput
from app.ids import looks_like_id, new_id
from app.logs import new_request_id
from app.services.pagination import decode_cursor, encode_cursor


def test_ids_are_unique_and_sort_by_time() -> None:
    first = new_id("gds")
    time.sleep(0.002)  # ids made in a later millisecond sort later; this is the property under test
    later = [new_id("gds") for _ in range(1000)]
    assert len(set(later)) == 1000
    assert all(first < other for other in later)
    assert all(looks_like_id(i) for i in later)


def test_request_ids_differ_between_forked_processes() -> None:
    """gunicorn and celery fork their workers: each must make ids of its own, not the same
    sequence from a generator state they all inherited."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports its id
        try:
            os.write(write_end, new_request_id().encode())
        finally:
            os._exit(0)  # never back into pytest
    os.waitpid(child, 0)
    os.close(write_end)
    ids = [os.read(read_end, 64).decode(), new_request_id()]
    os.close(read_end)
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]


@pytest.mark.parametrize("value", ["", "gds_", "gds_" + "I" * 26, "x" * 31, "GDS_01M88S610N83SY6VPQ23SAANM8"])
def test_not_ids(value: str) -> None:
    assert not looks_like_id(value)


def test_cursor_round_trip_and_rejections() -> None:
    some_id = new_id("ord")
    assert decode_cursor(encode_cursor(some_id)) == some_id
    for bad in ("!!!", "bm90LWFuLWlk", "\x00", "é"):
        with pytest.raises(InvalidInput) as error:
            decode_cursor(bad)
        assert "cursor" in error.value.errors
