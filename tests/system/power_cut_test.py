#!/usr/bin/env python3
"""A simulated power cut under load loses nothing acknowledged (issue 13).

orderd runs with ORDERMESH_TEST_POWER_CUT=1: RocksDB works through persistence::power_cut_fs,
and SIGUSR2 cuts the power (every file loses what was not synced, files whose directory was not
synced since they were created are removed) and ends the process at once. A kill -9 alone
cannot test this: the page cache survives it, so unsynced writes would still be read back.

The load, the checks and the two cycles are crash_recovery_test.py's (every acknowledged order
there with its status or a later one, stock and money exact after resending unanswered
deposits and restocks), with the cut in place of the kill. Each cut must end orderd with exit
137 and log what it dropped.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import crash_recovery_test as crash  # noqa: E402
import harness as h  # noqa: E402
from harness import check, eq, log  # noqa: E402

POWER_CUT_EXIT_CODE = 137  # nodes/power_cut_hook.hpp


def cut_power(node, cycle):
    text = node.log_file.read_text(errors="replace")
    check("ORDERMESH_TEST_POWER_CUT=1" in text, "orderd did not warn that the power-cut hook is on")
    code = node.kill(signal.SIGUSR2)  # only our pid
    eq(code, POWER_CUT_EXIT_CODE, f"cycle {cycle}: orderd's exit code after SIGUSR2")
    cut = [line for line in node.log_file.read_text(errors="replace").splitlines()
           if "simulated power cut" in line]
    check(len(cut) == 1, f"cycle {cycle}: orderd logged no power cut")
    check(" 0 errors" in cut[0], f"cycle {cycle}: the cut could not fix up every file: {cut[0]}")
    log(f"cycle {cycle}: {cut[0].split('SIGUSR2: ', 1)[-1]}")
    return code


def test_power_cut_under_load():
    crash.cycles_under_load("power-cut", cut_power, env={"ORDERMESH_TEST_POWER_CUT": "1"})


if __name__ == "__main__":
    h.main([test_power_cut_under_load], __doc__)
