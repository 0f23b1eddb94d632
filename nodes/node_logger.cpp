#include "nodes/node_logger.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "nodes/reopenable_file_sink.hpp"

namespace ordermesh::node {

node_logger make_node_logger(const std::string& node_id, const std::string& level,
                             log_format format, const std::string& log_file) {
  node_logger out;
  spdlog::sink_ptr sink;
  if (log_file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    out.reopen = [] {};
  } else {
    auto file = std::make_shared<reopenable_file_sink>(log_file);
    sink = file;
    out.reopen = [file] { file->reopen(); };
  }
  sink->set_formatter(std::make_unique<log_line_formatter>(format, node_id));
  out.log = std::make_shared<spdlog::logger>("orderd", sink);
  const auto lvl = spdlog::level::from_str(level);
  out.log->set_level(lvl);
  out.log->flush_on(lvl);
  // Whatever logs through spdlog's free functions (the storage library) uses this logger too.
  spdlog::set_default_logger(out.log);
  return out;
}

}  // namespace ordermesh::node
