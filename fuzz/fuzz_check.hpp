#pragma once
// The contract checks of the fuzz targets. They stay on in release builds (assert() would not:
// the fuzz build is RelWithDebInfo, -DNDEBUG), and abort so that libFuzzer saves the input as a
// crash file and the CI stage fails with the target's name.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz contract broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)
