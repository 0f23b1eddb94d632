#include "cluster/etcd/etcd_config.hpp"

#include <charconv>

namespace ordermesh::etcd {

std::string endpoint::url() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string s = tls ? "https://" : "http://";
  s += v6 ? "[" + host + "]" : host;
  s += ':';
  s += std::to_string(port);
  return s;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

error bad(std::string_view entry, std::string_view why) {
  std::string m = "bad etcd endpoint '";
  m += entry;
  m += "': ";
  m += why;
  m += " (expected http://host:port or https://host:port)";
  return error{errc::invalid_argument, std::move(m)};
}

result<endpoint> parse_one(std::string_view entry) {
  constexpr std::string_view plain = "http://";
  constexpr std::string_view secure = "https://";
  if (entry.empty()) {
    return bad(entry, "empty entry");
  }
  const bool tls = entry.substr(0, secure.size()) == secure;
  if (!tls && entry.substr(0, plain.size()) != plain) {
    return bad(entry, "only http:// and https:// are supported");
  }
  std::string_view rest = entry.substr(tls ? secure.size() : plain.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.find('/') != std::string_view::npos) {
    return bad(entry, "a path is not allowed");
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad(entry, "bad IPv6 address");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return bad(entry, "missing port");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad(entry, "an IPv6 address needs brackets");
    }
  }
  if (host.empty()) {
    return bad(entry, "missing host");
  }
  unsigned value = 0;
  const auto* end = port.data() + port.size();
  const auto [ptr, ec] = std::from_chars(port.data(), end, value);
  if (port.empty() || ec != std::errc{} || ptr != end || value == 0 || value > 65535) {
    return bad(entry, "bad port");
  }
  return endpoint{std::string(host), static_cast<uint16_t>(value), tls};
}

}  // namespace

result<std::vector<endpoint>> parse_endpoints(std::string_view csv) {
  std::vector<endpoint> out;
  // Bounded by the input length: each round consumes one entry and its comma.
  while (true) {
    const auto comma = csv.find(',');
    const std::string_view entry = trim(csv.substr(0, comma));
    auto parsed = parse_one(entry);
    if (!parsed) {
      return parsed.err();
    }
    if (!out.empty() && out.front().tls != parsed->tls) {
      return bad(entry, "http and https endpoints mixed: use one scheme for every endpoint");
    }
    out.push_back(std::move(*parsed));
    if (comma == std::string_view::npos) {
      break;
    }
    csv.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace ordermesh::etcd
