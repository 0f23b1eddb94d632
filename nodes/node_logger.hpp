#pragma once
// orderd's one logger: one sink (stderr, or --log-file) and one line format (--log-format) for
// everything the process logs. It is also spdlog's default logger, so the storage library's
// lines (persistence/ logs through spdlog's free functions and knows nothing of the node) land
// in the same sink and format, with the node's id.
#include <functional>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "nodes/log_line_format.hpp"

namespace ordermesh::node {

struct node_logger {
  std::shared_ptr<spdlog::logger> log;
  /// Reopens --log-file at its path (SIGHUP, after logrotate moved it away); no-op on stderr.
  /// Safe while other threads log: lines written meanwhile go to the old or the new file.
  std::function<void()> reopen;
};

/// Creates the logger; its level is `level` (trace|debug|info|warn|error) and every line at that
/// level or above is flushed as it is written, so a debug line is not held back until the next
/// info line. Throws spdlog::spdlog_ex when the file cannot be opened.
node_logger make_node_logger(const std::string& node_id, const std::string& level,
                             log_format format, const std::string& log_file);

}  // namespace ordermesh::node
