"""A local file read by positional reads: exact bytes from any number of threads at
once, each thread's reads counted apart, and the open pickled as a fresh one."""

from __future__ import annotations

import os
import pickle
import queue
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tau3mu.preadsource import PReadFileSource


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> tuple[str, bytes]:
    path = tmp_path_factory.mktemp("pread") / "bytes.bin"
    content = random.Random(7).randbytes(1 << 20)
    path.write_bytes(content)
    return str(path), content


def _read(source: PReadFileSource, start: int, stop: int) -> bytes:
    return bytes(source.chunk(start, stop).raw_data)


def test_threads_reading_one_open_get_their_own_bytes(data_file):
    """uproot's synchronous file source (``seek`` then ``read`` on one file object) gave
    one thread another's bytes; positional reads share no file position."""
    path, content = data_file
    source = PReadFileSource(path)

    def reads(seed: int) -> int:
        rng, wrong = random.Random(seed), 0
        for _ in range(500):
            start = rng.randrange(len(content) - 4096)
            stop = start + rng.randrange(1, 4096)
            wrong += _read(source, start, stop) != content[start:stop]
        return wrong

    with source, ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(reads, range(16))) == 0
    assert source.closed


def test_each_threads_reads_are_counted_apart(data_file):
    path, _ = data_file
    with PReadFileSource(path) as source, ThreadPoolExecutor(1) as pool:
        _read(source, 0, 100)
        notified: queue.Queue = queue.Queue()
        pool.submit(source.chunks, [(0, 10), (20, 50)], notified).result()
        assert source.bytes_read_in_this_thread() == 100
        assert pool.submit(source.bytes_read_in_this_thread).result() == 40
        assert source.num_requested_bytes == 140
        assert (source.num_requests, source.num_requested_chunks) == (2, 3)
        assert notified.qsize() == 2


def test_a_file_url_and_a_pickled_open_read_the_file(data_file):
    path, content = data_file
    with PReadFileSource("file://" + os.path.abspath(path)) as source:
        assert source.file_path == os.path.abspath(path)
        assert source.num_bytes == len(content)
        again = pickle.loads(pickle.dumps(source))
        with again:
            assert _read(again, 10, 20) == content[10:20]
            assert again.bytes_read_in_this_thread() == 10


def test_a_closed_open_refuses_to_read(data_file):
    source = PReadFileSource(data_file[0])
    source.close()
    source.close()
    with pytest.raises(OSError, match="closed"):
        source.chunk(0, 10)


def test_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        PReadFileSource(str(tmp_path / "missing.root"))
