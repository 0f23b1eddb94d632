#!/usr/bin/env python3
"""Runs the chaos checker's unit tests (tests/chaos/test_*.py, Python 3 stdlib only) like
`python3 -m unittest discover -s tests/chaos -t . -p 'test_*.py' -v` does, and then:

  * prints the closing line `N passed, M failed` (scripts/test.sh counts cases from it);
  * exits 1 if any case failed (a failure, an error, an unexpected success, a module that did
    not import) or if none passed: a run that tests nothing must not pass;
  * with ORDERMESH_REPORT_DIR set, writes the per-case report py-chaos_checker.json there
    (chaos/case_report.py), cases named module.Class.method.

Run from anywhere: python3 tests/chaos/run_unittests.py (ctest: entry chaos_checker).
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))  # the tests import chaos; discovery's top level is ROOT

from chaos import case_report  # noqa: E402

SUITE = "chaos_checker"


def cases(suite):
    """Every test case in a (nested) suite, in discovery order."""
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from cases(t)
        else:
            yield t


def case_id(test):
    """module.Class.method; a failed subTest counts against the test it belongs to."""
    return getattr(test, "test_case", test).id()


class Result(unittest.TextTestResult):
    """unittest's verbose result that also remembers which cases passed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(case_id(test))

    def addExpectedFailure(self, test, err):  # expected: the case passed
        super().addExpectedFailure(test, err)
        self.passed.append(case_id(test))


def main():
    suite = unittest.TestLoader().discover(start_dir=str(HERE), pattern="test_*.py",
                                           top_level_dir=str(ROOT))
    # An import error shows up as a case (unittest.loader._FailedTest.<module>) that fails.
    defined = [t.id() for t in cases(suite)]
    result = None
    try:
        # stdout, not unittest's stderr: the closing line below is then the last line of the
        # output however a caller captures it
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                         resultclass=Result).run(suite)
    finally:
        passed, failed, skipped = [], [], []
        if result is not None:
            for test, _ in result.errors + result.failures:
                # setUpClass / module errors are reported as an _ErrorHolder: its description
                # ("setUpClass (tests.chaos.x.Class)") names what failed
                name = case_id(test) if isinstance(test, unittest.TestCase) else str(test)
                if name not in failed:
                    failed.append(name)
            for test in result.unexpectedSuccesses:
                if case_id(test) not in failed:
                    failed.append(case_id(test))
            skipped = [(case_id(t), reason) for t, reason in result.skipped]
            # a case whose subTest failed was not added as a success; be sure anyway
            passed = [n for n in dict.fromkeys(result.passed) if n not in failed]
        case_report.write(SUITE, defined, passed, failed, skipped)
    print(f"{len(passed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
