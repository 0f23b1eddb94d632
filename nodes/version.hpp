#pragma once
// orderd's version (the CMake project version) and how long this process has run, for
// `orderd --version` and cluster.status.
#include <chrono>

namespace ordermesh::node {

/// "0.1.0": the project version orderd was built from.
const char* node_version();

/// Time since this process started (since the program was loaded, before main).
std::chrono::milliseconds process_uptime();

}  // namespace ordermesh::node
