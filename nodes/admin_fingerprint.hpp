#pragma once
// The admin secret's fingerprint, which every node of a cluster compares in etcd before it joins
// (coordination_session.hpp, check_admin_secret): session tokens are MACed with a key derived
// from the admin token, so a node with another admin token could not verify sessions minted by
// the others, and its admin token would not work on them.
#include <string>
#include <string_view>

namespace ordermesh::node {

/// 64 hex digits: BLAKE2b-256 (libsodium crypto_generichash) of `admin_token`, keyed with the
/// context "ordermesh admin fingerprint v1", so it is unrelated to the session key (a different
/// derivation of the same token) and useless for minting or checking sessions. It reveals the
/// token no more than a session token already does (both allow offline guessing of a weak
/// token): admin tokens must be random (generated ones are 192 bits).
std::string admin_fingerprint(std::string_view admin_token);

}  // namespace ordermesh::node
