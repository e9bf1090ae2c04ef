from input_pipeline.progress import Progress


def test_lines_at_intervals_and_at_the_end():
    now = [0.0]
    lines = []
    progress = Progress("encoding faces", 100, every=5, clock=lambda: now[0], log=lines.append)
    for _ in range(100):
        now[0] += 0.125
        progress.update()
    assert lines == [
        "encoding faces: 40/100 (40%) 8/s elapsed 0:05 ETA 0:07",
        "encoding faces: 80/100 (80%) 8/s elapsed 0:10 ETA 0:02",
        "encoding faces: 100/100 (100%) 8/s elapsed 0:12",
    ]
