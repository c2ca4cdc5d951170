"""promptkit._cache: atomic writes, the fingerprinted record format, the bounded LRU."""

from __future__ import annotations

import os
import stat
from array import array

import pytest
from hypothesis import given, settings, strategies as st

from promptkit._cache import LRUCache, atomic_write, fingerprint, read_record, write_record


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    os.chmod(p, 0o640)
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]  # no temporary file left


def test_atomic_write_error_leaves_the_original(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    p.write_text("old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write(p, b"new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_record_round_trip(tmp_path):
    p = tmp_path / "r.rec"
    fields = {"names": "a\nb", "blob": b"\x00\x01", "ids": array("i", [1, -2, 3]), "meta": {"k": [1, "x", None]}}
    assert write_record(p, "test", 3, "src1", fields)
    got = read_record(p, "test", 3, "src1")
    assert got == fields
    assert isinstance(got["ids"], array) and got["ids"].typecode == "i"


@pytest.mark.parametrize("kind,version,source", [("other", 3, "src1"), ("test", 4, "src1"), ("test", 3, "src2")])
def test_record_mismatch_reads_none(tmp_path, kind, version, source):
    p = tmp_path / "r.rec"
    write_record(p, "test", 3, "src1", {"a": "x"})
    assert read_record(p, kind, version, source) is None


def test_damaged_or_foreign_record_reads_none(tmp_path):
    p = tmp_path / "r.rec"
    write_record(p, "test", 1, "s", {"a": "hello world"})
    blob = bytearray(p.read_bytes())
    blob[-3] ^= 0xFF  # one flipped byte in the payload
    p.write_bytes(bytes(blob))
    assert read_record(p, "test", 1, "s") is None
    import pickle

    p.write_bytes(pickle.dumps({"a": "hello"}))  # a pickle is never loaded
    assert read_record(p, "test", 1, "s") is None
    assert read_record(tmp_path / "missing", "test", 1, "s") is None


def test_fingerprint_is_order_and_boundary_sensitive():
    assert fingerprint("ab", "c") != fingerprint("a", "bc")
    assert fingerprint("a", "b") != fingerprint("b", "a")
    assert fingerprint("a", 1, b"x") == fingerprint("a", 1, b"x")


def test_lru_keeps_recent_entries_and_stays_bounded():
    c = LRUCache(10)
    for i in range(5):
        c.put(i, i)
    for i in range(5, 100):
        c.get(0)  # keep 0 hot
        c.put(i, i)
        assert len(c) <= 10
    assert c.get(0) == 0
    assert c.get(99) == 99
    assert c.get(1) is None


def test_lru_by_weight():
    c = LRUCache(100, weigh=len)
    c.put("a", "x" * 40)
    c.put("b", "y" * 40)
    assert c.size <= 100
    c.put("big", "z" * 60)  # larger than a generation: not kept
    assert "big" not in c
    assert c.get("b") == "y" * 40


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers()), max_size=200), st.integers(2, 20))
def test_lru_is_a_bounded_subset_of_a_dict(ops, maxsize):
    c = LRUCache(maxsize)
    ref = {}
    for k, v in ops:
        c.put(k, v)
        ref[k] = v
        assert len(c) <= maxsize
        assert c.get(k) == v  # just written: always there
    for k in range(31):
        got = c.get(k)
        assert got is None or got == ref[k]  # never a wrong value


def test_lru_lookup_is_getitem_and_stays_valid():
    c = LRUCache(8)
    lookup = c.lookup
    c.put("a", 1)
    assert lookup("a") == 1 == c["a"]
    with pytest.raises(KeyError):
        lookup("missing")
    for i in range(20):  # several generation flips
        c.put(i, i)
        assert lookup(i) == i
    c.clear()
    with pytest.raises(KeyError):
        lookup(19)
    c.put("b", 2)
    assert lookup("b") == 2  # the same bound look-up works after clear()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30), st.integers()), max_size=200), st.integers(2, 20))
def test_lru_lookup_agrees_with_get(ops, maxsize):
    c = LRUCache(maxsize, weigh=lambda v: 1 + abs(v) % 3)
    lookup = c.lookup
    ref = {}
    for write, k, v in ops:
        if write:
            c.put(k, v)
            ref[k] = v
        else:
            try:
                got = lookup(k)
            except KeyError:
                got = None
            assert got is None or got == ref[k]
            assert (got is None) == (c.get(k) is None)  # a hit promotes; get agrees after it
        assert c.size <= maxsize


def test_lru_peek_sees_only_recent_entries():
    c = LRUCache(4)
    c.put("a", 1)
    assert c.peek("a") == 1 and c.peek("b") is None
    for k in "bcd":  # "a" ages into the old generation
        c.put(k, k)
    assert c.peek("a") is None and c.get("a") == 1  # get finds (and refreshes) it
    assert c.peek("a") == 1
