# Registers one ctest entry per Catch2 test case of a test binary. Run after each link of the
# binary (POST_BUILD, see ordermesh_unit_test in tests/CMakeLists.txt) with:
#   -D EXECUTABLE=path  -D TARGET_NAME=unit_x  -D REPORT_DIR=dir  -D CTEST_FILE=out.cmake
#   -D WORKING_DIR=dir  -D TIMEOUT=seconds     -D LABELS="unit"
#
# Why not Catch2's own catch_discover_tests (Catch.cmake of Catch2 2.13): it splits a case name
# that holds ';' into two ctest entries and passes '[' ']' ',' through a filter that then matches
# nothing; Catch2 v2 prints "No tests ran", exits 0, and ctest counted those entries as passed
# while the case never ran (issue 10). Here:
#   - every entry runs its case with `-w NoTests`, so a filter that matches nothing fails;
#   - the filter escapes every character Catch2's test-spec parser treats specially;
#   - a name that a ctest entry cannot carry (';', a tab or carriage return, leading or
#     trailing blanks) fails the build, naming the case;
#   - every entry writes Catch2's XML report to REPORT_DIR/<index>.xml, from which
#     scripts/check_test_reports.py proves that each listed case ran (and how it ended).

foreach(var EXECUTABLE TARGET_NAME REPORT_DIR CTEST_FILE WORKING_DIR TIMEOUT LABELS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "discover_catch_cases.cmake: ${var} is not set")
  endif()
endforeach()

execute_process(
  COMMAND "${EXECUTABLE}" --list-test-names-only
  OUTPUT_VARIABLE listing
  RESULT_VARIABLE listed
  WORKING_DIRECTORY "${WORKING_DIR}")
# Catch2 v2 exits with the number of cases listed: 0 means the binary defines none.
if(listed EQUAL 0)
  message(FATAL_ERROR "${TARGET_NAME}: defines no test cases")
elseif(NOT listed MATCHES "^[0-9]+$")
  message(FATAL_ERROR "${TARGET_NAME}: --list-test-names-only failed: ${listed}")
endif()

# A ';' would split the name into two CMake list elements before we ever see it.
string(REGEX MATCHALL "[^\n]*;[^\n]*" with_semicolon "${listing}")
if(with_semicolon)
  string(REPLACE ";" "<;>" shown "${with_semicolon}")
  message(FATAL_ERROR "${TARGET_NAME}: a test case name holds ';', which ctest cannot carry; "
                      "rename it: ${shown}")
endif()

string(REPLACE "\n" ";" lines "${listing}")
set(script "")
set(index 0)
# Reports of earlier runs are scripts/test.sh's to clear (before each ctest run), not ours: a
# rebuild during a run must not delete what the run wrote.
file(MAKE_DIRECTORY "${REPORT_DIR}")
foreach(name IN LISTS lines)
  if(name STREQUAL "")
    continue()
  endif()
  if(name MATCHES "[\t\r]" OR name MATCHES "^ " OR name MATCHES " $")
    message(FATAL_ERROR "${TARGET_NAME}: test case name \"${name}\" has a tab or carriage "
                        "return, or leading/trailing blanks; rename it")
  endif()
  # Catch2's test spec: '\' escapes; ',' separates alternatives; '[' ']' are tags; '*' is a
  # wildcard; '~' and '!' at the start exclude; '"' quotes. Escape all of them.
  set(spec "${name}")
  foreach(special "\\" "," "[" "]" "*" "~" "!" "\"")
    string(REPLACE "${special}" "\\${special}" spec "${spec}")
  endforeach()
  math(EXPR index "${index} + 1")
  set(report "${REPORT_DIR}/${index}.xml")
  string(APPEND script
    "add_test([==[${TARGET_NAME}:${name}]==] [==[${EXECUTABLE}]==] [==[${spec}]==] "
    "-w NoTests -r xml -o [==[${report}]==])\n"
    "set_tests_properties([==[${TARGET_NAME}:${name}]==] PROPERTIES WORKING_DIRECTORY "
    "[==[${WORKING_DIR}]==] TIMEOUT ${TIMEOUT} LABELS [==[${LABELS}]==])\n")
endforeach()
if(index EQUAL 0)
  message(FATAL_ERROR "${TARGET_NAME}: listed no test case names")
endif()
file(WRITE "${CTEST_FILE}" "${script}")
