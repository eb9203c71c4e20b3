"""One metric's values over steps, with min/max decimation to a chart's width."""

from __future__ import annotations

from array import array


class Series:
    """Append-only (step, value) pairs; `decimate(width)` keeps each bucket's min and max.

    Decimation results are cached per width and extended incrementally: buckets are
    fixed-size runs of points, so appending points only touches the last bucket, and a
    chart of a million-point series costs about what a thousand-point one does.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.xs = array("d")
        self.ys = array("d")
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.xs)

    def append(self, step: float, value: float) -> None:
        """Add one point (steps are expected to grow)."""
        self.xs.append(float(step))
        self.ys.append(float(value))

    def truncate_after(self, step: float) -> None:
        """Drop every point past `step` (a resumed segment replaces them)."""
        n = len(self.xs)
        while n and self.xs[n - 1] > step:
            n -= 1
        if n != len(self.xs):
            del self.xs[n:]
            del self.ys[n:]
            self._cache.clear()

    @property
    def last(self) -> float | None:
        """The latest value, or None."""
        return self.ys[-1] if self.ys else None

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        """At most ~2×width points: per bucket, its min and max in step order."""
        n = len(self.xs)
        if width <= 0 or n == 0:
            return [], []
        if n <= 2 * width:
            return list(self.xs), list(self.ys)
        # Bucket size is a power of two ≥ n/width, so it changes rarely as n grows; the
        # cache keeps closed buckets and the open one's running min/max, so an update
        # costs the new points plus the output copy, not the series length.
        size = 1
        while size * width < n:
            size *= 2
        state = self._cache.get(width)
        if not state or state[0] != size:
            state = (size, [0], [], [], [0, 0, 0])  # size, done, out_x, out_y, open bucket
            self._cache[width] = state
        _, done_box, out_x, out_y, bucket = state
        xs, ys = self.xs, self.ys
        start, lo, hi = bucket
        for i in range(done_box[0], n):
            if i - start == size:
                self._close(out_x, out_y, start, lo, hi)
                start, lo, hi = i, i, i
            elif ys[i] < ys[lo]:
                lo = i
            elif ys[i] > ys[hi]:
                hi = i
        bucket[:] = [start, lo, hi]
        done_box[0] = n
        tail_x, tail_y = [], []
        self._close(tail_x, tail_y, start, lo, hi)
        return out_x + tail_x, out_y + tail_y

    def _close(self, out_x: list[float], out_y: list[float], start: int, lo: int, hi: int) -> None:
        for i in sorted({lo, hi}):
            out_x.append(self.xs[i])
            out_y.append(self.ys[i])
