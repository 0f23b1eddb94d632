// ordermesh-journal: offline tools over a stopped node's data dir (see nodes/journal_dump.hpp).
//
//   ordermesh-journal dump --data-dir DIR --node-id N [--max-records N] [--pretty]
//   ordermesh-journal verify --data-dir DIR
//
// Exit status of dump: 0 the dump is on stdout; 1 the data dir cannot be read (message on
// stderr); 2 bad usage. Of verify: 0 clean; 1 damage found (one line per damaged entity);
// 2 bad usage; 3 the data dir cannot be opened or is not in this version's value format.
#include <charconv>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "nodes/journal_dump.hpp"
#include "nodes/journal_verify.hpp"

namespace {

constexpr const char* usage_text =
    "usage: ordermesh-journal dump --data-dir DIR --node-id N [--max-records N] [--pretty]\n"
    "       ordermesh-journal verify --data-dir DIR\n"
    "\n"
    "dump:\n"
    "Prints one JSON object: every journal event and snapshot of the stopped node whose\n"
    "--data-dir is DIR (opened read-only, never written), its shard ownership records and the\n"
    "state replaying each entity's journal gives (chaos/journal_audit.py reads it).\n"
    "\n"
    "  --data-dir DIR     the node's data dir (its RocksDB is DIR/db)\n"
    "  --node-id N        the node's id (must match the id recorded in DIR)\n"
    "  --max-records N    refuse journals of more than N events + snapshots (default 5000000)\n"
    "  --pretty           indent the JSON\n"
    "  -h, --help         this text\n"
    "\n"
    "verify: checks the checksum of every event and snapshot of the stopped node's data dir\n"
    "and that each entity's events are contiguous; prints one line per damaged entity and a\n"
    "summary.\n"
    "\n"
    "Exit status: dump: 0 dumped; 1 the data dir cannot be read; 2 bad usage.\n"
    "verify: 0 clean; 1 damage found; 2 bad usage; 3 the data dir cannot be opened (or is a\n"
    "0.2.0 one, without checksums: start orderd on it once to migrate it).\n";

int usage_error(const std::string& why) {
  std::cerr << "ordermesh-journal: " << why << "\n" << usage_text;
  return 2;
}

int verify(const std::string& data_dir) {
  ordermesh::node::journal_verify_options opts;
  opts.data_dir = data_dir;
  ordermesh::node::journal_verify_report report;
  std::string error;
  if (!ordermesh::node::verify_journal(opts, &report, &error)) {
    std::cerr << "ordermesh-journal: " << error << "\n";
    return 3;
  }
  for (const auto& d : report.damaged) {
    std::cout << ordermesh::node::describe(d) << "\n";
  }
  std::cout << "verified '" << data_dir << "': " << report.entities << " entities, "
            << report.events << " events, " << report.snapshots << " snapshots, " << report.wakeups
            << " wakeup entries; " << report.damaged_count << " damaged"
            << (report.damaged_count > report.damaged.size() ? " (first ones listed)" : "") << "\n";
  std::cout.flush();
  return report.damaged_count == 0 && std::cout.good() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ordermesh::node::journal_dump_options opts;
  bool pretty = false;
  std::string command;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= argc) {
        return false;
      }
      into = argv[++i];
      return true;
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << usage_text;
      return 0;
    }
    if (arg == "--data-dir") {
      if (!value(opts.data_dir)) {
        return usage_error("--data-dir needs a value");
      }
    } else if (arg == "--node-id") {
      if (!value(opts.node_id)) {
        return usage_error("--node-id needs a value");
      }
    } else if (arg == "--max-records") {
      std::string text;
      size_t n = 0;
      if (!value(text)) {
        return usage_error("--max-records needs a value");
      }
      const auto r = std::from_chars(text.data(), text.data() + text.size(), n);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size() || n == 0) {
        return usage_error("--max-records must be a positive number");
      }
      opts.max_records = n;
    } else if (arg == "--pretty") {
      pretty = true;
    } else if (command.empty() && !arg.empty() && arg[0] != '-') {
      command = arg;
    } else {
      return usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (command == "verify") {
    if (opts.data_dir.empty()) {
      return usage_error("verify needs --data-dir");
    }
    return verify(opts.data_dir);
  }
  if (command != "dump") {
    return usage_error(command.empty() ? "no command" : "unknown command '" + command + "'");
  }
  if (opts.data_dir.empty() || opts.node_id.empty()) {
    return usage_error("dump needs --data-dir and --node-id");
  }
  nlohmann::json out;
  std::string error;
  if (!ordermesh::node::dump_journal(opts, &out, &error)) {
    std::cerr << "ordermesh-journal: " << error << "\n";
    return 1;
  }
  std::cout << out.dump(pretty ? 1 : -1, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}
