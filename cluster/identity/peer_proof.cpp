#include "cluster/identity/peer_proof.hpp"

#include <algorithm>

namespace ordermesh::cluster::identity {

namespace {

void put_field(std::string& out, const std::string& field) {
  auto n = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  out += field;
}

}  // namespace

std::string transcript(const proof_context& c) {
  std::string out = "ordermesh peer proof v1";
  out.push_back('\0');
  out.push_back(static_cast<char>(c.role));
  put_field(out, c.prover_id);
  put_field(out, c.verifier_id);
  put_field(out, c.dialed_address);
  put_field(out, c.dialer_challenge);
  put_field(out, c.dialed_challenge);
  return out;
}

std::string check_peer_id(const std::string& id, const std::string& my_id) {
  if (id.empty() || id.size() > max_node_id_bytes)
    return "a node id of " + std::to_string(id.size()) + " bytes (1 to " +
           std::to_string(max_node_id_bytes) + ")";
  if (id == my_id)
    return "it claims this node's own id";
  return {};
}

std::string check_challenge(const std::string& challenge) {
  if (challenge.size() != challenge_bytes)
    return "a challenge of " + std::to_string(challenge.size()) + " bytes (want " +
           std::to_string(challenge_bytes) + ")";
  return {};
}

bool make_proof(identity_prover& prover, const proof_context& c, identity_proof* out,
                std::string* why) {
  return prover.prove(transcript(c), out, why);
}

std::string check_proof(identity_prover& prover, const identity_proof& proof,
                        const proof_context& c) {
  if (proof.certificate.size() > max_certificate_bytes)
    return "a certificate of " + std::to_string(proof.certificate.size()) + " bytes (at most " +
           std::to_string(max_certificate_bytes) + ")";
  if (proof.signature.size() > max_signature_bytes)
    return "a signature of " + std::to_string(proof.signature.size()) + " bytes (at most " +
           std::to_string(max_signature_bytes) + ")";
  if (auto bad = check_challenge(c.dialer_challenge); !bad.empty())
    return "dialer's " + bad;
  if (auto bad = check_challenge(c.dialed_challenge); !bad.empty())
    return "dialed node's " + bad;
  return prover.verify(proof, c.prover_id, transcript(c));
}

pending_challenges::pending_challenges(size_t max_entries, clock::duration ttl)
    : max_entries_(max_entries), ttl_(ttl) {}

void pending_challenges::expire(clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();)
    it = now - it->second.issued >= ttl_ ? entries_.erase(it) : std::next(it);
}

bool pending_challenges::issue(const std::string& key, entry e, clock::time_point now) {
  expire(now);
  if (!entries_.count(key) && entries_.size() >= max_entries_)
    return false;
  e.issued = now;
  entries_[key] = std::move(e);
  return true;
}

std::optional<pending_challenges::entry> pending_challenges::take(const std::string& key,
                                                                  const std::string& claimed_id,
                                                                  clock::time_point now) {
  expire(now);
  auto it = entries_.find(key);
  if (it == entries_.end())
    return std::nullopt;
  auto e = std::move(it->second);
  entries_.erase(it);  // answered once, right or wrong: a second try needs a new hello
  if (e.claimed_id != claimed_id)
    return std::nullopt;
  return e;
}

refusal_log_limiter::refusal_log_limiter(size_t max_ids, clock::duration interval, size_t max_lines)
    : max_ids_(max_ids), interval_(interval), max_lines_(max_lines) {}

bool refusal_log_limiter::allow(const std::string& id, clock::time_point now,
                                uint64_t* suppressed) {
  if (window_lines_ == 0 || now - window_start_ >= interval_) {
    window_start_ = now;
    window_lines_ = 0;
  }
  if (window_lines_ >= max_lines_)
    return false;  // the total for this interval is spent: counted by the caller's metric only
  auto it = ids_.find(id);
  if (it == ids_.end()) {
    if (ids_.size() >= max_ids_) {
      // Forget the id logged longest ago: at worst it gets one line early.
      auto oldest = std::min_element(ids_.begin(), ids_.end(), [](const auto& a, const auto& b) {
        return a.second.last < b.second.last;
      });
      ids_.erase(oldest);
    }
    ids_[id] = seen{now, 0};
    *suppressed = 0;
    ++window_lines_;
    return true;
  }
  if (now - it->second.last < interval_) {
    ++it->second.suppressed;
    return false;
  }
  *suppressed = it->second.suppressed;
  it->second = seen{now, 0};
  ++window_lines_;
  return true;
}

}  // namespace ordermesh::cluster::identity
