#include "cluster/etcd/etcd_types.hpp"

#include <utility>

namespace ordermesh::etcd {

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  // Bounded by the prefix length: each round drops one byte or returns.
  while (!end.empty()) {
    const auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

namespace {
compare make_compare(std::string key, compare_target t, compare_result r, int64_t n) {
  compare c;
  c.key = std::move(key);
  c.target = t;
  c.result = r;
  c.number = n;
  return c;
}
}  // namespace

compare compare::create(std::string key, compare_result r, int64_t n) {
  return make_compare(std::move(key), compare_target::create, r, n);
}

compare compare::mod(std::string key, compare_result r, int64_t n) {
  return make_compare(std::move(key), compare_target::mod, r, n);
}

compare compare::version(std::string key, compare_result r, int64_t n) {
  return make_compare(std::move(key), compare_target::version, r, n);
}

compare compare::lease(std::string key, compare_result r, int64_t id) {
  return make_compare(std::move(key), compare_target::lease, r, id);
}

compare compare::value_is(std::string key, compare_result r, std::string value) {
  compare c = make_compare(std::move(key), compare_target::value, r, 0);
  c.value = std::move(value);
  return c;
}

}  // namespace ordermesh::etcd
