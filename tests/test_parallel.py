import functools

from input_pipeline import parallel


def test_results_come_back_in_input_order():
    square = functools.partial(pow, exp=2)  # Picklable, for the spawned workers.
    for workers in (1, 2):
        assert list(parallel.ordered_map(square, range(100), workers, chunk_size=7)) == [i * i for i in range(100)]


def test_items_are_pulled_lazily_so_memory_stays_bounded():
    pulled = []

    def items():
        for i in range(10_000):
            pulled.append(i)
            yield i

    results = parallel.ordered_map(abs, items(), num_workers=2, chunk_size=8, chunks_per_worker=2)
    assert next(results) == 0
    # At most the in-flight window (2 workers x 2 chunks) and the chunk being cut.
    assert len(pulled) <= 8 * (2 * 2 + 1)
    results.close()


def test_resolve_workers():
    assert parallel.resolve_workers(3) == 3
    assert parallel.resolve_workers(0) >= 1
