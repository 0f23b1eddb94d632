"""Totals made of amounts that surely happened plus amounts that maybe happened.

A deposit or restock that got no clear answer (`info`) may or may not have been applied, but if
it was, it was applied whole and once (idempotent by request_id). So the true total is the sum
of the sure amounts plus the sum of SOME SUBSET of the maybe amounts. Checking membership in
that set of subset sums is stricter than checking the range [sure, sure + all maybe]: a balance
off by half a deposit is caught. The set is built exactly while it stays small (a run has a
handful of `info` deposits per user); past MAX_EXACT sums it falls back to the range, which is
still sound (never a false alarm), only less sharp.
"""

MAX_EXACT = 1 << 15


class PossibleTotals:
    """The totals `sum(sure) + sum(any subset of maybe)`."""

    def __init__(self, sure=(), maybe=()):
        self.sure = sum(sure)
        self.maybe = list(maybe)
        self.lo = self.sure
        self.hi = self.sure + sum(self.maybe)
        sums = {0}
        for amount in self.maybe:
            sums |= {s + amount for s in sums}
            if len(sums) > MAX_EXACT:
                sums = None
                break
        self._sums = None if sums is None else sorted(sums)

    @property
    def exact(self):
        return self._sums is not None

    def admits(self, lo, hi=None):
        """True if some possible total lies in [lo, hi] (hi defaults to lo)."""
        hi = lo if hi is None else hi
        if hi < self.lo or lo > self.hi:
            return False
        if self._sums is None:
            return True
        # Smallest subset sum >= lo - sure, by bisection; then is it <= hi - sure?
        want = lo - self.sure
        a, b = 0, len(self._sums)
        while a < b:
            m = (a + b) // 2
            if self._sums[m] < want:
                a = m + 1
            else:
                b = m
        return a < len(self._sums) and self._sums[a] <= hi - self.sure

    def describe(self):
        if not self.maybe:
            return f"{self.sure}"
        kind = "any subset" if self.exact else "a range (too many subsets to list)"
        shown = self.maybe[:10] + (["..."] if len(self.maybe) > 10 else [])
        return f"{self.sure} + {kind} of {shown} (so {self.lo}..{self.hi})"
