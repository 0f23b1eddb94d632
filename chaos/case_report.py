"""Per-case test reports for scripts/test.sh (Python 3 stdlib only).

ctest counts entries, and one entry runs many cases; scripts/test.sh counts CASES, and a case
that is defined but did not run is how a silently empty run shows. So when the environment
variable ORDERMESH_REPORT_DIR is set, every Python test runner (tests/system/harness.py,
tests/chaos/run_unittests.py, chaos/run.py) writes one file when it finishes, also on
failure: `$ORDERMESH_REPORT_DIR/py-<suite>.json`

    {"suite": "flow_test",
     "defined": [every case the runner knows, whatever -k / --scenario filter ran],
     "passed": [...], "failed": [...],
     "skipped": [{"name": ..., "reason": ...}]}

<suite> is the runner's own name (the test script's stem, chaos_checker, chaos) unless the
environment variable ORDERMESH_REPORT_SUITE names it: the ctest registrations set it to the
ctest entry's name, which is how scripts/check_test_reports.py finds each entry's report.

A defined case in none of the three lists did not run (filtered out, or the run was cut
short). The file is written to a temporary name and renamed, so a reader never sees half of
it. Without ORDERMESH_REPORT_DIR nothing is written.
"""

import json
import os
import tempfile

ENV = "ORDERMESH_REPORT_DIR"
SUITE_ENV = "ORDERMESH_REPORT_SUITE"


def write(suite, defined, passed, failed, skipped=()):
    """Writes the report of `suite` (or of $ORDERMESH_REPORT_SUITE) if ORDERMESH_REPORT_DIR is
    set (the directory is created if missing); `skipped` holds (name, reason) pairs. Returns the
    path written, or None."""
    directory = os.environ.get(ENV)
    if not directory:
        return None
    suite = os.environ.get(SUITE_ENV) or suite
    os.makedirs(directory, exist_ok=True)
    doc = {"suite": suite, "defined": list(defined), "passed": list(passed),
           "failed": list(failed),
           "skipped": [{"name": name, "reason": reason} for name, reason in skipped]}
    path = os.path.join(directory, f"py-{suite}.json")
    # the temporary name does not match py-*.json, so a reader globbing for reports skips it
    fd, tmp = tempfile.mkstemp(prefix=f".py-{suite}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the report from other users
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
