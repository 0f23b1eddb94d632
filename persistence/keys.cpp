#include "persistence/keys.hpp"

#include "persistence/big_endian.hpp"

namespace ordermesh::persistence::keys {

namespace {
bool valid_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool valid_id(std::string_view id) {
  if (id.empty()) {
    return false;
  }
  for (char c : id) {
    if (!valid_id_char(c)) {
      return false;
    }
  }
  return true;
}

std::string entity_record(const entity_key& k, char tag, uint64_t seq) {
  std::string out = entity_prefix(k);
  out.push_back(tag);
  detail::put_u64be(out, seq);
  return out;
}
}  // namespace

std::string entity_prefix(const entity_key& k) {
  std::string out;
  out.reserve(2 + 1 + k.id.size() + 1 + 1 + 8);  // room for the record tag and seq that follow
  detail::put_u16be(out, k.shard);
  out.push_back(static_cast<char>(k.kind));
  out += k.id;
  out.push_back('\0');
  return out;
}

std::string event(const entity_key& k, uint64_t seq) {
  return entity_record(k, 'e', seq);
}

std::string snapshot(const entity_key& k, uint64_t seq) {
  return entity_record(k, 's', seq);
}

std::string wakeup(const entity_key& k) {
  std::string out = wakeup_prefix(k.shard);
  out.push_back(static_cast<char>(k.kind));
  out += k.id;
  return out;
}

std::string wakeup_prefix(uint16_t shard) {
  std::string out = shard_prefix(shard);
  out.push_back(static_cast<char>(wakeup_tag));
  return out;
}

std::string shard_prefix(uint16_t shard) {
  std::string out;
  detail::put_u16be(out, shard);
  return out;
}

std::string shard_end(uint16_t shard) {
  return shard_prefix(static_cast<uint16_t>(shard + 1));
}

bool in_shard(std::string_view key, uint16_t shard) {
  return key.size() > 2 && detail::get_u16be(key) == shard;
}

std::string meta(std::string_view name) {
  std::string out = shard_prefix(meta_shard);
  out.push_back('m');
  out += name;
  return out;
}

bool parse_record(std::string_view key, entity_key& out, char& tag, uint64_t& seq) {
  // [shard:2][kind:1][id:1+][0x00][tag:1][seq:8]
  if (key.size() < 2 + 1 + 1 + 1 + 1 + 8) {
    return false;
  }
  const size_t end = key.size() - 8 - 1 - 1;  // where the 0x00 after the id must be
  const char t = key[end + 1];
  if (key[end] != '\0' || (t != 'e' && t != 's')) {
    return false;
  }
  entity_key k;
  k.shard = detail::get_u16be(key);
  k.kind = static_cast<uint8_t>(key[2]);
  k.id.assign(key.substr(3, end - 3));
  if (!valid(k)) {
    return false;
  }
  out = std::move(k);
  tag = t;
  seq = detail::get_u64be(key.substr(end + 2));
  return true;
}

bool parse_wakeup(std::string_view key, entity_key& out) {
  // [shard:2][0xF0][kind:1][id:1+]
  if (key.size() < 5 || static_cast<uint8_t>(key[2]) != wakeup_tag) {
    return false;
  }
  entity_key k;
  k.shard = detail::get_u16be(key);
  k.kind = static_cast<uint8_t>(key[3]);
  k.id.assign(key.substr(4));
  if (!valid(k)) {
    return false;
  }
  out = std::move(k);
  return true;
}

bool valid(const entity_key& k) {
  return k.shard != meta_shard && k.kind != wakeup_tag && valid_id(k.id);
}

}  // namespace ordermesh::persistence::keys
