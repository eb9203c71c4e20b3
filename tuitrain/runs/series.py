"""One metric's values over steps, in bounded memory, with min/max decimation to a chart's width.

A series keeps its latest points exactly, up to `CAPACITY` of them. When they fill up, the
oldest ones are compacted into buckets of `bucket_size` consecutive points (a power of two,
first `FIRST_BUCKET`); a bucket keeps its lowest point, its highest point and its last point.
When there are more than `MAX_BUCKETS` buckets, neighbours merge in pairs and the bucket size
doubles. So a series holds at most `CAPACITY` points plus `MAX_BUCKETS` buckets (about
2.5 MiB) however long the run, until buckets reach `CAPACITY // 4` points (some 5·10⁸ points
logged); past that the bucket list grows by one bucket per `CAPACITY // 4` points.

`decimate(width)` cuts the point indices into runs of a power-of-two length aligned at 0 and
keeps each run's min and max in step order. A run always covers whole buckets, so for any
width up to `CAPACITY // 4` the result is exactly what the uncompacted points would give.

The lowest and highest point of a bucket or run are its first minimal and first maximal
value ignoring NaNs (a NaN only when all its values are NaN); `truncate_after` (a resume)
drops compacted history at bucket granularity, see its doc.
"""

from __future__ import annotations

from array import array

CAPACITY = 1 << 16
MAX_BUCKETS = CAPACITY // 2
FIRST_BUCKET = 4
# Buckets stop growing here, so that a compaction can always align to a pair of buckets.
MAX_BUCKET = CAPACITY // 4
# Points `sketch` keeps: finer than any chart draws.
SKETCH_POINTS = 4096
# Decimation results kept for this many widths (the least recently added is dropped).
_CACHE_WIDTHS = 8


class _Decimation:
    """Incremental min/max decimation of one width: closed runs plus the open run's extremes."""

    __slots__ = ("size", "done", "out_x", "out_y", "start", "lx", "ly", "hx", "hy")

    def __init__(self, size: int) -> None:
        self.size = size
        self.done = 0  # point indices [0, done) are folded in
        self.out_x: list[float] = []
        self.out_y: list[float] = []
        self.start = -size  # the open run's first index (none open yet)
        self.lx = self.ly = self.hx = self.hy = 0.0


def _emit(out_x: list[float], out_y: list[float], lx: float, ly: float, hx: float, hy: float) -> None:
    """Append a run's low and high points in step order (once when they are the same)."""
    if hx < lx:
        out_x += (hx, lx)
        out_y += (hy, ly)
    elif lx < hx or (ly != hy and ly == ly):
        out_x += (lx, hx)
        out_y += (ly, hy)
    else:
        out_x.append(lx)
        out_y.append(ly)


def _extremes(seg: array, offset: int) -> tuple[int, float, int, float]:
    """(index, value) of the first lowest and first highest non-NaN value of `seg`."""
    lo = hi = 0
    low = high = seg[0]
    for i, y in enumerate(seg):
        if y < low or (low != low and y == y):
            lo, low = i, y
        if y > high or (high != high and y == y):
            hi, high = i, y
    return offset + lo, low, offset + hi, high


class Series:
    """(step, value) points of one metric; see the module doc.

    `xs` and `ys` are the points kept exactly: all of them until the series first exceeds
    `CAPACITY`, the most recent ones after that. Charts use `decimate(width)`, which spans
    the whole history. Decimation results are cached per width and extended incrementally,
    so a chart of a million-point series costs about what a thousand-point one does.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.xs = array("d")
        self.ys = array("d")
        self.bucket_size = FIRST_BUCKET
        # one entry per compacted bucket: its lowest, highest and last point
        self._lo_x, self._lo_y = array("d"), array("d")
        self._hi_x, self._hi_y = array("d"), array("d")
        self._last_x, self._last_y = array("d"), array("d")
        self._cache: dict[int, _Decimation] = {}

    def __len__(self) -> int:
        """Points appended (and not truncated), compacted ones included."""
        return len(self._lo_x) * self.bucket_size + len(self.xs)

    @property
    def stored(self) -> tuple[int, int]:
        """(exact points, compacted buckets) held in memory."""
        return len(self.xs), len(self._lo_x)

    def append(self, step: float, value: float) -> None:
        """Add one point (steps are expected to grow)."""
        self.xs.append(float(step))
        self.ys.append(float(value))
        if len(self.xs) >= CAPACITY:
            self._compact()

    @property
    def last(self) -> float | None:
        """The latest value, or None."""
        if self.ys:
            return self.ys[-1]
        return self._last_y[-1] if self._last_y else None

    def truncate_after(self, step: float) -> None:
        """Drop every point past `step` (a resumed segment replaces them).

        Exact points go one by one. When the cut falls in the compacted history, whole
        buckets go: the one holding `step` is dropped too, so up to `bucket_size - 1`
        points at or before `step` are lost with it (a small gap before the resume).
        """
        xs = self.xs
        n = len(xs)
        while n and xs[n - 1] > step:
            n -= 1
        changed = n != len(xs)
        if changed:
            del xs[n:]
            del self.ys[n:]
        if not n and self._last_x:
            keep = len(self._last_x)
            while keep and self._last_x[keep - 1] > step:
                keep -= 1
            if keep != len(self._last_x):
                changed = True
                for column in self._columns():
                    del column[keep:]
            if not keep:
                self.bucket_size = FIRST_BUCKET
        if changed:
            self._cache.clear()

    def sketch(self, after: float | None = None, upto: float | None = None, width: int = SKETCH_POINTS) -> "Series":
        """A new series of this one's points in (`after`, `upto`], decimated to about `width`
        (exact for a short series): a line kept to draw, not to compute with (the line a
        rewind abandoned, a fork's parent segment)."""
        out = Series(self.name)
        for x, y in zip(*self.decimate(width)):
            if (after is None or x > after) and (upto is None or x <= upto):
                out.append(x, y)
        return out

    def _columns(self) -> tuple[array, ...]:
        return self._lo_x, self._lo_y, self._hi_x, self._hi_y, self._last_x, self._last_y

    def _compact(self) -> None:
        """Fold the oldest exact points into buckets, keeping at least CAPACITY // 2 exact."""
        b = self.bucket_size
        done = len(self._lo_x) * b
        # End on a multiple of two buckets so that neighbours can always merge in pairs.
        end = (done + len(self.xs) - CAPACITY // 2) // (2 * b) * (2 * b)
        if end <= done:
            return
        xs, ys = self.xs, self.ys
        k = end - done
        starts = range(0, k, b)
        segs = [ys[s:s + b] for s in starts]
        lows, highs = list(map(min, segs)), list(map(max, segs))
        # min/max skip NaNs except a leading one (then they return it): those go by hand
        lo_at = [s + seg.index(low) if low == low else -1 for s, seg, low in zip(starts, segs, lows)]
        hi_at = [s + seg.index(high) if high == high else -1 for s, seg, high in zip(starts, segs, highs)]
        for j, seg in enumerate(segs):
            if lo_at[j] < 0:
                lo_at[j], lows[j], hi_at[j], highs[j] = _extremes(seg, j * b)
        self._lo_x.extend(map(xs.__getitem__, lo_at))
        self._lo_y.extend(lows)
        self._hi_x.extend(map(xs.__getitem__, hi_at))
        self._hi_y.extend(highs)
        self._last_x.extend(xs[b - 1:k:b])
        self._last_y.extend(ys[b - 1:k:b])
        del xs[:end - done]
        del ys[:end - done]
        if len(self._lo_x) > MAX_BUCKETS and b < MAX_BUCKET:
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        """Halve the bucket count (it is even here) by merging neighbours; double their size."""
        lo_x, lo_y, hi_x, hi_y = self._lo_x, self._lo_y, self._hi_x, self._hi_y
        merged = tuple(array("d") for _ in range(6))
        m_lo_x, m_lo_y, m_hi_x, m_hi_y, m_last_x, m_last_y = merged
        for a in range(0, len(lo_x), 2):
            b = a + 1
            la, lb = lo_y[a], lo_y[b]
            k = b if lb < la or (la != la and lb == lb) else a
            m_lo_x.append(lo_x[k])
            m_lo_y.append(lo_y[k])
            ha, hb = hi_y[a], hi_y[b]
            k = b if hb > ha or (ha != ha and hb == hb) else a
            m_hi_x.append(hi_x[k])
            m_hi_y.append(hi_y[k])
        m_last_x.extend(self._last_x[1::2])
        m_last_y.extend(self._last_y[1::2])
        self._lo_x, self._lo_y, self._hi_x, self._hi_y, self._last_x, self._last_y = merged
        self.bucket_size *= 2

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        """At most ~2×width points: per run of points, its min and max in step order."""
        n = len(self)
        buckets = len(self._lo_x)
        if width <= 0 or n == 0:
            return [], []
        if not buckets and n <= 2 * width:
            return list(self.xs), list(self.ys)
        # The run length is a power of two ≥ n/width (and ≥ a bucket), so it changes rarely
        # as n grows; the cache keeps closed runs and the open one's extremes, so an update
        # costs the new points plus the output copy, not the series length.
        size = self.bucket_size if buckets else 1
        while size * width < n:
            size *= 2
        compacted = buckets * self.bucket_size
        state = self._cache.get(width)
        if (state is None or state.size != size
                or (state.done < compacted and state.done % self.bucket_size)):
            # new width, new run length, or a compaction swallowed points not yet folded in
            self._cache.pop(width, None)
            if len(self._cache) >= _CACHE_WIDTHS:
                del self._cache[next(iter(self._cache))]
            state = self._cache[width] = _Decimation(size)
        self._advance(state, compacted, n)
        tail_x, tail_y = [], []
        if state.start >= 0:
            _emit(tail_x, tail_y, state.lx, state.ly, state.hx, state.hy)
        return state.out_x + tail_x, state.out_y + tail_y

    def _advance(self, st: _Decimation, compacted: int, n: int) -> None:
        """Fold points [st.done, n) into `st`: whole buckets first, then exact points."""
        size, out_x, out_y = st.size, st.out_x, st.out_y
        start, lx, ly, hx, hy = st.start, st.lx, st.ly, st.hx, st.hy
        b = self.bucket_size
        if st.done < compacted:
            lo_x, lo_y, hi_x, hi_y = self._lo_x, self._lo_y, self._hi_x, self._hi_y
            for j in range(st.done // b, compacted // b):
                g = j * b
                if g >= start + size:
                    if start >= 0:
                        _emit(out_x, out_y, lx, ly, hx, hy)
                    start = g - g % size
                    lx, ly, hx, hy = lo_x[j], lo_y[j], hi_x[j], hi_y[j]
                    continue
                y = lo_y[j]
                if y < ly or (ly != ly and y == y):
                    lx, ly = lo_x[j], y
                y = hi_y[j]
                if y > hy or (hy != hy and y == y):
                    hx, hy = hi_x[j], y
            st.done = compacted
        xs, ys = self.xs, self.ys
        end = start + size - compacted  # the open run's end, as an index into xs
        for r in range(st.done - compacted, n - compacted):
            y = ys[r]
            if r >= end:
                if start >= 0:
                    _emit(out_x, out_y, lx, ly, hx, hy)
                g = r + compacted
                start = g - g % size
                end = start + size - compacted
                lx = hx = xs[r]
                ly = hy = y
                continue
            if y < ly or (ly != ly and y == y):
                lx, ly = xs[r], y
            if y > hy or (hy != hy and y == y):
                hx, hy = xs[r], y
        st.done = n
        st.start, st.lx, st.ly, st.hx, st.hy = start, lx, ly, hx, hy
