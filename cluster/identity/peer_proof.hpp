#pragma once
// The hello between two member agents as pure functions (no CAF, no sockets, no clock of its
// own), driven by cluster/agent/peer_links.cpp and by tests with a fake prover:
//
//   dialer D                                            dialed node N (its published address A)
//   hello(D's id, cD)                          ->
//                                              <-  (N's id, cN, proof of N over
//                                                   transcript(dialed, N, D, A, cD, cN))
//   D checks N's proof (N is the id D dialed for, A the address it dialed);
//   proof(D's id, proof of D over transcript(dialer, D, N, A, cD, cN), D's actors)  ->
//                                              N checks it against the cN it issued to this
//                                              CAF node, registers D's actors
//                                              <-  N's actors
//
// Why a proof cannot be reused (docs/SECURITY.md, "Identity inside the cluster"):
//   * replay: each side signs the other's fresh random challenge; a proof made for another
//     challenge does not verify, and a challenge is taken (erased) by its first answer;
//   * reflection: the role (dialer/dialed) is signed, so a node's own answer sent back to it
//     as a dialer's proof is refused, and each proof names both the prover and the verifier;
//   * relay: a node holding some cluster certificate that makes a member dial it (by writing
//     another member's address into the store) and forwards that member's proof to a third one
//     fails, because the proof names the address dialed, which only the real node publishes
//     as its own, and the verifier's id.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "cluster/identity/identity_prover.hpp"

namespace ordermesh::cluster::identity {

constexpr size_t challenge_bytes = 32;
constexpr size_t max_node_id_bytes = 64;
constexpr size_t max_address_bytes = 300;
/// A chain of a few certificates (P-256 or RSA-4096) fits with room to spare.
constexpr size_t max_certificate_bytes = 16 * 1024;
constexpr size_t max_signature_bytes = 1024;

enum class proof_role : uint8_t { dialer = 1, dialed = 2 };

/// Everything a proof is bound to.
struct proof_context {
  proof_role role = proof_role::dialer;  // the prover's side of the connection
  std::string prover_id;
  std::string verifier_id;
  std::string dialed_address;  // host:port the dialer dialed, the dialed node's published one
  std::string dialer_challenge;
  std::string dialed_challenge;
};

/// The bytes a proof signs: a fixed label, then every field of `c` length-prefixed (so no two
/// contexts share a transcript).
std::string transcript(const proof_context& c);

/// Empty when `id` may name a peer: 1 to max_node_id_bytes bytes and not `my_id`.
std::string check_peer_id(const std::string& id, const std::string& my_id);

/// Empty when `challenge` is challenge_bytes long.
std::string check_challenge(const std::string& challenge);

/// The prover's proof over `c`'s transcript; false with *why set when it cannot sign.
bool make_proof(identity_prover& prover, const proof_context& c, identity_proof* out,
                std::string* why);

/// Empty when `proof` proves c.prover_id over `c`; otherwise the reason. Oversized parts are
/// refused before the prover looks at them.
std::string check_proof(identity_prover& prover, const identity_proof& proof,
                        const proof_context& c);

/// The challenges a dialed node has issued and not seen answered, per connection (`key`: the
/// peer's CAF node as text). Bounded in count; an entry expires after `ttl`; a new hello on the
/// same connection replaces the old entry.
class pending_challenges {
 public:
  using clock = std::chrono::steady_clock;
  struct entry {
    std::string claimed_id;
    std::string dialer_challenge;
    std::string dialed_challenge;
    clock::time_point issued;
  };

  pending_challenges(size_t max_entries, clock::duration ttl);

  /// Remembers a challenge for `key`; false (nothing remembered) when full of live entries.
  bool issue(const std::string& key, entry e, clock::time_point now);
  /// The entry of `key` for `claimed_id`, erased (a challenge is answered once); none when
  /// absent, expired or issued for another id.
  std::optional<entry> take(const std::string& key, const std::string& claimed_id,
                            clock::time_point now);
  size_t size() const { return entries_.size(); }

 private:
  void expire(clock::time_point now);
  size_t max_entries_;
  clock::duration ttl_;
  std::map<std::string, entry> entries_;
};

/// At most one log line per peer id per `interval` for refused proofs (a peer that retries
/// every second must not flood the log), and at most `max_lines` lines per `interval` in all (a
/// peer that claims a new id each time must not either). Bounded: when full, old ids are
/// forgotten.
class refusal_log_limiter {
 public:
  using clock = std::chrono::steady_clock;
  refusal_log_limiter(size_t max_ids, clock::duration interval, size_t max_lines = 20);
  /// True when a line about `id` may be logged now; `suppressed` receives how many were not
  /// logged since the last line about it.
  bool allow(const std::string& id, clock::time_point now, uint64_t* suppressed);

 private:
  struct seen {
    clock::time_point last;
    uint64_t suppressed = 0;
  };
  size_t max_ids_;
  clock::duration interval_;
  size_t max_lines_;
  clock::time_point window_start_{};
  size_t window_lines_ = 0;
  std::map<std::string, seen> ids_;
};

}  // namespace ordermesh::cluster::identity
