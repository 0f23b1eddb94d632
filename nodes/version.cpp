#include "nodes/version.hpp"

namespace ordermesh::node {

namespace {
// Initialised when the program is loaded: the closest the process has to its start time.
const auto process_started = std::chrono::steady_clock::now();
}  // namespace

const char* node_version() {
  return ORDERMESH_VERSION;
}

std::chrono::milliseconds process_uptime() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               process_started);
}

}  // namespace ordermesh::node
