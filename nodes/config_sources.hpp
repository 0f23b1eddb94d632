#pragma once
// Where orderd's settings come from besides the command line: ORDERMESH_* environment variables
// and a --config file (Boost.program_options' `key = value` format). Both use the long flags'
// names (ORDERMESH_NODE_ID and `node-id = n1` for --node-id). parse_config (config.hpp) stores
// them after the command line, so the command line wins over the environment, and the
// environment over the file.
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace ordermesh::node {

/// The largest --config file read: a few hundred settings fit in a fraction of it, and a wrong
/// path (a log, a device) fails fast instead of being read whole.
constexpr size_t max_config_file_bytes = 64 * 1024;

/// "ORDERMESH_NODE_ID" -> "node-id" (lower case, '_' -> '-'); empty when `var` lacks the prefix.
std::string flag_of_variable(const std::string& var);

/// "node-id" -> "ORDERMESH_NODE_ID".
std::string variable_of_flag(const std::string& flag);

/// True for the ORDERMESH_* variables that are not orderd settings: ORDERMESH_ADMIN_TOKEN (read
/// by parse_config itself, below --admin-token and --admin-token-file), orderctl's
/// ORDERMESH_TOKEN, and those of the project's scripts and tests (scripts/, tests/, chaos/).
bool is_other_variable(const std::string& var);

/// The settings given by `env` (NAME=VALUE strings, as in environ): every ORDERMESH_<FLAG> with
/// a non-empty value whose flag `settable` knows. False, with *error naming the variable, for an
/// ORDERMESH_ variable that is none of them but looks like one (a flag's name within two
/// edits, or a flag's name plus or minus whole words: ORDERMESH_REPLICATION); other variables
/// are not orderd's and are left alone.
bool environment_options(const boost::program_options::options_description& settable,
                         const std::vector<std::string>& env,
                         boost::program_options::parsed_options* out, std::string* error);

/// The settings of the config file at `path`. False, with *error naming the file and the key or
/// line, when it cannot be read, is larger than max_config_file_bytes, or holds a key that
/// `settable` does not know.
bool config_file_options(const boost::program_options::options_description& settable,
                         const std::string& path, boost::program_options::parsed_options* out,
                         std::string* error);

/// The flag of `settable` nearest to `name` (at most two edits away), empty if none is.
std::string nearest_flag(const boost::program_options::options_description& settable,
                         const std::string& name);

}  // namespace ordermesh::node
