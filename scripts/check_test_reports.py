#!/usr/bin/env python3
"""Proves that a ctest run tested what it claims, and counts test cases (not ctest entries).

Usage: check_test_reports.py --build DIR --junit FILE [--label L] [--name NAME]

After `ctest --output-junit FILE [-L L]` in DIR, it reads:
  * the ctest entries the same selection holds (`ctest --show-only=json-v1 [-L L]`);
  * each Catch2 binary's own list of cases (`BINARY --list-test-names-only`), and the XML report
    every case wrote (tests/discover_catch_cases.cmake registers `-r xml -o DIR/<i>.xml`);
  * each other entry's per-case report, DIR/test-reports/py-<ctest name>.json, written by the
    Python runners (tests/system/harness.py, tests/chaos/run_unittests.py, chaos/run.py):
    {"suite", "defined", "passed", "failed", "skipped": [{"name", "reason"}]};
  * ctest's JUnit file, for how each entry ended.

It fails, naming them, on: a Catch2 case that the binary defines but no report shows run (a
mangled name, a filter matching nothing, a crash before the report); a case whose report says it
failed; a non-Catch2 entry that left no report, a report with cases defined but not run, or a
report in which nothing ran; an entry ctest counts as failed. The last line is
`NAME: N passed, M failed, K skipped` with cases counted, for scripts/test.sh's summary.
Exit 0 only if nothing failed and at least one case ran.
"""

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

MAX_NAMES_SHOWN = 20


def ctest_entries(build, label):
    """The ctest entries of this selection: [{name, command, labels}]."""
    cmd = ["ctest", "--show-only=json-v1"] + (["-L", label] if label else [])
    out = subprocess.run(cmd, cwd=build, capture_output=True, text=True, check=True).stdout
    entries = []
    for t in json.loads(out).get("tests", []):
        labels = []
        for prop in t.get("properties", []):
            if prop.get("name") == "LABELS":
                labels = prop.get("value", [])
        entries.append({"name": t["name"], "command": t.get("command", []), "labels": labels})
    return entries


def catch_report_path(command):
    """The XML report a Catch2 entry writes (its `-r xml -o PATH`), or None for other entries."""
    if "-r" in command and "-o" in command:
        r, o = command.index("-r"), command.index("-o")
        if r + 1 < len(command) and command[r + 1] == "xml" and o + 1 < len(command):
            return Path(command[o + 1])
    return None


def junit_outcomes(junit):
    """ctest entry name -> 'passed' | 'failed' | 'not run', from ctest's --output-junit file."""
    outcomes = {}
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"check: cannot read ctest's JUnit report {junit}: {e}")
        return outcomes
    for case in root.iter("testcase"):
        status = case.get("status", "")
        if status == "run" and case.find("failure") is None:
            outcomes[case.get("name")] = "passed"
        elif status in ("notrun", "disabled"):
            outcomes[case.get("name")] = "not run"
        else:
            outcomes[case.get("name")] = "failed"
    return outcomes


def listed_cases(binary):
    """The case names a Catch2 binary defines, or None if it cannot list them."""
    try:
        p = subprocess.run([binary, "--list-test-names-only"], capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"check: {binary}: cannot list its cases: {e}")
        return None
    names = []
    for line in p.stdout.splitlines():
        # Catch2 v2 quotes a name that starts with '#', so it is not read as a tag filter.
        if len(line) >= 2 and line.startswith('"#') and line.endswith('"'):
            line = line[1:-1]
        if line:
            names.append(line)
    return names


def read_catch_report(path):
    """{case name: passed?} from one Catch2 XML report; None if missing or unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cases = {}
    for tc in root.iter("TestCase"):
        result = tc.find("OverallResult")
        cases[tc.get("name")] = result is not None and result.get("success") == "true"
    return cases


def failure_details(path, name, limit=6):
    """The failed expressions of one case in a Catch2 XML report, as short lines."""
    lines = []
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return lines
    for tc in root.iter("TestCase"):
        if tc.get("name") != name:
            continue
        for el in tc.iter():
            if el.tag == "Expression" and el.get("success") == "false":
                orig = (el.findtext("Original") or "").strip()
                expanded = (el.findtext("Expanded") or "").strip()
                lines.append(f"{el.get('filename')}:{el.get('line')}: {el.get('type')}"
                             f"({orig}) with {expanded}")
            elif el.tag in ("FatalErrorCondition", "Exception") and el.text:
                lines.append(f"{el.get('filename')}:{el.get('line')}: {el.tag}: "
                             f"{el.text.strip()}")
    return lines[:limit]


def shown(names):
    names = sorted(names)
    more = len(names) - MAX_NAMES_SHOWN
    return "; ".join(f'"{n}"' for n in names[:MAX_NAMES_SHOWN]) + (f" (+{more} more)"
                                                                    if more > 0 else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, type=Path)
    ap.add_argument("--junit", required=True, type=Path)
    ap.add_argument("--label", default=None, help="the ctest -L selection that was run")
    ap.add_argument("--name", default="cases", help="name of the closing line")
    args = ap.parse_args()

    build = args.build.resolve()
    report_dir = build / "test-reports"
    entries = ctest_entries(build, args.label)
    outcomes = junit_outcomes(args.junit)
    passed = failed = skipped = 0
    catch_defined = catch_ran = 0
    problems = []

    # ---- Catch2 binaries: every listed case must have run, according to its own report.
    by_binary = defaultdict(list)  # binary -> [(entry name, report path)]
    others = []
    for e in entries:
        report = catch_report_path(e["command"])
        if report is not None and e["command"]:
            by_binary[e["command"][0]].append((e["name"], report))
        else:
            others.append(e)
    for binary, items in sorted(by_binary.items()):
        label = Path(binary).name
        defined = listed_cases(binary)
        ran = {}  # case name -> passed?
        where = {}  # case name -> its report
        for entry_name, report in items:
            cases = read_catch_report(report)
            if cases is None:
                problems.append(f"{label}: ctest entry \"{entry_name}\" left no readable report "
                                f"({report}; crashed, or not run)")
                continue
            if not cases:
                problems.append(f"{label}: ctest entry \"{entry_name}\" ran no case")
            # The process can still fail after its report says passed: a sanitizer's report at
            # exit (leaks), a timeout, a crash in a destructor. ctest's verdict then wins.
            entry_ok = outcomes.get(entry_name, "not run") == "passed"
            if cases and not entry_ok and all(cases.values()):
                problems.append(f"{label}: ctest entry \"{entry_name}\" failed after its "
                                f"cases passed (ctest: {outcomes.get(entry_name, 'not run')})")
            for name, ok in cases.items():
                ran[name] = ran.get(name, True) and ok and entry_ok
                where[name] = report
        if defined is None:
            problems.append(f"{label}: cannot list the cases it defines")
            defined = []
        not_run = set(defined) - set(ran)
        catch_defined += len(defined)
        catch_ran += len(set(defined) & set(ran))
        bad = [n for n, ok in ran.items() if not ok]
        good = len(ran) - len(bad)
        passed += good
        failed += len(bad) + len(not_run)
        print(f"check: {label}: {len(defined)} cases defined, {len(ran)} ran, {good} passed, "
              f"{len(bad)} failed")
        if not_run:
            problems.append(f"{label}: {len(not_run)} case(s) defined but never run: "
                            f"{shown(not_run)}")
        for n in sorted(bad):
            problems.append(f"{label}: case failed: \"{n}\"")
            for line in failure_details(where[n], n):
                problems.append(f"    {line}")

    # ---- every other entry: its per-case report, checked against how ctest saw it end.
    for e in others:
        name = e["name"]
        outcome = outcomes.get(name, "not run")
        if name.endswith("_NOT_BUILT"):  # tests/CMakeLists.txt's stand-in for a missing binary
            failed += 1
            problems.append(f"{name[:-len('_NOT_BUILT')]}: the test binary is not built, so "
                            f"none of its cases ran")
            continue
        path = report_dir / f"py-{name}.json"
        try:
            rep = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            failed += 1
            problems.append(f"{name}: ctest says {outcome}, but it left no per-case report "
                            f"({path}: {err})")
            continue
        ok, bad = list(rep.get("passed", [])), list(rep.get("failed", []))
        skips = rep.get("skipped", [])
        ran = set(ok) | set(bad) | {s.get("name") for s in skips}
        not_run = set(rep.get("defined", [])) - ran
        passed += len(ok)
        failed += len(bad) + len(not_run)
        skipped += len(skips)
        print(f"check: {name}: {len(rep.get('defined', []))} cases defined, {len(ok)} passed, "
              f"{len(bad)} failed, {len(skips)} skipped (ctest: {outcome})")
        if not_run:
            problems.append(f"{name}: {len(not_run)} case(s) defined but never run: "
                            f"{shown(not_run)}")
        if bad:
            problems.append(f"{name}: failed: {shown(bad)}")
        for s in skips:
            print(f"check: {name}: skipped {s.get('name')}: {s.get('reason')}")
        if not ok and not bad and not skips:
            failed += 1
            problems.append(f"{name}: ran no case")
        if outcome != "passed" and not bad and not not_run:
            failed += 1
            problems.append(f"{name}: ctest says {outcome} although its report shows no failure")

    if not entries:
        problems.append("no ctest entries in this selection")
    if by_binary:
        print(f"check: Catch2: {catch_ran} of {catch_defined} cases ran")
    for p in problems:
        print(f"check: FAIL {p}")
    print(f"{args.name}: {passed} passed, {failed} failed" + (f", {skipped} skipped"
                                                              if skipped else ""))
    return 0 if passed > 0 and failed == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
