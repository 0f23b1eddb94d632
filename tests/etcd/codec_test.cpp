// The gateway's wire format without a server: base64, int64 as strings, omitted defaults,
// streaming answers, watch lines, and malformed input (bad_response, never an exception).
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cluster/etcd/etcd_codec.hpp"
#include "cluster/etcd/etcd_config.hpp"
#include "cluster/etcd/etcd_line_buffer.hpp"

using namespace ordermesh::etcd;
using json = nlohmann::json;

TEST_CASE("etcd codec base64 round-trips arbitrary bytes", "[etcd][codec]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("a") == "YQ==");
  CHECK(base64_encode("ab") == "YWI=");
  CHECK(base64_encode("abc") == "YWJj");
  CHECK(base64_encode(std::string("\0\xff\x10", 3)) == "AP8Q");
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all += static_cast<char>(i);
  }
  for (std::size_t len = 0; len <= all.size(); len += 37) {
    const std::string in = all.substr(0, len);
    std::string out;
    REQUIRE(base64_decode(base64_encode(in), out));
    CHECK(out == in);
  }
}

TEST_CASE("etcd codec base64 rejects malformed text", "[etcd][codec]") {
  std::string out;
  CHECK_FALSE(base64_decode("YQ=", out));       // bad length
  CHECK_FALSE(base64_decode("Y===", out));      // too much padding
  CHECK_FALSE(base64_decode("YQ==YQ==", out));  // padding before the end
  CHECK_FALSE(base64_decode("YQ=a", out));      // data after padding
  CHECK_FALSE(base64_decode("Y!==", out));      // outside the alphabet
  CHECK(base64_decode("", out));
  CHECK(out.empty());
}

TEST_CASE("etcd codec prefix end follows etcd rules", "[etcd][codec]") {
  CHECK(prefix_end("/ordermesh/c/members/") == "/ordermesh/c/members0");
  CHECK(prefix_end("a") == "b");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(prefix_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  CHECK(prefix_end("") == std::string(1, '\0'));
}

TEST_CASE("etcd codec endpoints parse and reject bad entries", "[etcd][codec]") {
  auto eps = parse_endpoints("http://127.0.0.1:2379, http://localhost:2380/,http://[::1]:2381");
  REQUIRE(eps.ok());
  REQUIRE(eps->size() == 3);
  CHECK((*eps)[0].host == "127.0.0.1");
  CHECK((*eps)[0].port == 2379);
  CHECK((*eps)[1].host == "localhost");
  CHECK((*eps)[2].host == "::1");
  CHECK((*eps)[2].url() == "http://[::1]:2381");
  for (const char* bad :
       {"", "127.0.0.1:2379", "ftp://h:1", "https://h", "http://h", "http://h:0", "http://h:70000",
        "http://h:1/v3", "http://:1", "http://h:1,", "http://::1:2"}) {
    INFO(bad);
    auto r = parse_endpoints(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::invalid_argument);
  }
}

TEST_CASE("etcd codec encodes requests with base64 keys and int64 strings", "[etcd][codec]") {
  range_request r;
  r.key = "/a";
  r.range_end = prefix_end("/a");
  r.limit = 10;
  r.revision = 7;
  r.keys_only = true;
  const auto j = json::parse(encode_range(r));
  CHECK(j["key"] == base64_encode("/a"));
  CHECK(j["range_end"] == base64_encode("/b"));
  CHECK(j["limit"] == "10");
  CHECK(j["revision"] == "7");
  CHECK(j["keys_only"] == true);
  CHECK_FALSE(j.contains("count_only"));

  put_request p{"k", std::string("\0v", 2), 1234567890123456789, true};
  const auto pj = json::parse(encode_put(p));
  CHECK(pj["value"] == base64_encode(std::string("\0v", 2)));
  CHECK(pj["lease"] == "1234567890123456789");
  CHECK(pj["prev_kv"] == true);

  CHECK(json::parse(encode_lease_grant(3, 0)) == json{{"TTL", "3"}});
  CHECK(json::parse(encode_lease_grant(3, 42)) == json({{"TTL", "3"}, {"ID", "42"}}));
  CHECK(json::parse(encode_lease_id(-5)) == json{{"ID", "-5"}});
}

TEST_CASE("etcd codec encodes txn compares and ops", "[etcd][codec]") {
  txn_request t;
  t.compares.push_back(compare::absent("/c"));
  t.compares.push_back(compare::mod("/s/1", compare_result::equal, 17));
  t.compares.push_back(compare::version("/v", compare_result::greater, 2));
  t.compares.push_back(compare::lease("/l", compare_result::not_equal, 9));
  t.compares.push_back(compare::value_is("/x", compare_result::less, "zz"));
  t.success.push_back(put_request{"/c", "me", 5, false});
  t.success.push_back(delete_request{"/d", "", false});
  t.failure.push_back(range_request{"/c", "", 0, 0, false, false});
  const auto j = json::parse(encode_txn(t));
  REQUIRE(j["compare"].size() == 5);
  CHECK(j["compare"][0] == json({{"key", base64_encode("/c")},
                                 {"target", "CREATE"},
                                 {"result", "EQUAL"},
                                 {"create_revision", "0"}}));
  CHECK(j["compare"][1]["target"] == "MOD");
  CHECK(j["compare"][1]["mod_revision"] == "17");
  CHECK(j["compare"][2]["target"] == "VERSION");
  CHECK(j["compare"][2]["result"] == "GREATER");
  CHECK(j["compare"][2]["version"] == "2");
  CHECK(j["compare"][3]["target"] == "LEASE");
  CHECK(j["compare"][3]["result"] == "NOT_EQUAL");
  CHECK(j["compare"][3]["lease"] == "9");
  CHECK(j["compare"][4]["target"] == "VALUE");
  CHECK(j["compare"][4]["result"] == "LESS");
  CHECK(j["compare"][4]["value"] == base64_encode("zz"));
  CHECK(j["success"][0]["request_put"]["lease"] == "5");
  CHECK(j["success"][1]["request_delete_range"]["key"] == base64_encode("/d"));
  CHECK(j["failure"][0]["request_range"]["key"] == base64_encode("/c"));
}

TEST_CASE("etcd codec decodes a range with int64 strings", "[etcd][codec]") {
  const auto r = decode_range(
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"9007199254740993","raft_term":"2"},
          "kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"3","version":"2",
                  "value":"AP8=","lease":"7587"}],"more":true,"count":"5"})");
  REQUIRE(r.ok());
  CHECK(r->revision == 9007199254740993);  // above 2^53: would be lost as a double
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].key == "a");
  CHECK(r->kvs[0].value == std::string("\0\xff", 2));
  CHECK(r->kvs[0].create_revision == 2);
  CHECK(r->kvs[0].mod_revision == 3);
  CHECK(r->kvs[0].version == 2);
  CHECK(r->kvs[0].lease == 7587);
  CHECK(r->more);
  CHECK(r->count == 5);
}

TEST_CASE("etcd codec reads omitted default fields as zero false or empty", "[etcd][codec]") {
  // A range that found nothing: no kvs, no count.
  const auto empty = decode_range(R"({"header":{"revision":"3"}})");
  REQUIRE(empty.ok());
  CHECK(empty->kvs.empty());
  CHECK(empty->count == 0);
  CHECK_FALSE(empty->more);

  // A failed txn has no "succeeded".
  const auto failed = decode_txn(
      R"({"header":{"revision":"3"},"responses":[{"response_range":{"header":{"revision":"3"},
          "kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"3","version":"2",
          "value":"Mg=="}],"count":"1"}}]})");
  REQUIRE(failed.ok());
  CHECK_FALSE(failed->succeeded);
  REQUIRE(failed->responses.size() == 1);
  const auto& rr = std::get<range_response>(failed->responses[0]);
  REQUIRE(rr.kvs.size() == 1);
  CHECK(rr.kvs[0].value == "2");
  CHECK(rr.kvs[0].lease == 0);

  const auto ok = decode_txn(
      R"({"header":{"revision":"4"},"succeeded":true,"responses":[
          {"response_put":{"header":{"revision":"4"}}},
          {"response_delete_range":{"header":{"revision":"4"},"deleted":"1"}}]})");
  REQUIRE(ok.ok());
  CHECK(ok->succeeded);
  CHECK(ok->revision == 4);
  REQUIRE(ok->responses.size() == 2);
  CHECK(std::get<put_response>(ok->responses[0]).revision == 4);
  CHECK_FALSE(std::get<put_response>(ok->responses[0]).prev_kv.has_value());
  CHECK(std::get<delete_response>(ok->responses[1]).deleted == 1);

  // A keepalive on an expired or unknown lease has no "TTL".
  const auto expired =
      decode_lease_keepalive("{\"result\":{\"header\":{\"revision\":\"4\"},\"ID\":\"1234\"}}\n");
  REQUIRE(expired.ok());
  CHECK(*expired == 0);
  const auto alive = decode_lease_keepalive(
      "{\"result\":{\"header\":{\"revision\":\"4\"},\"ID\":\"1234\",\"TTL\":\"5\"}}\n");
  REQUIRE(alive.ok());
  CHECK(*alive == 5);

  // timetolive says -1 for an unknown lease: this client says 0.
  const auto gone = decode_lease_time_to_live(R"({"header":{},"ID":"1234","TTL":"-1"})");
  REQUIRE(gone.ok());
  CHECK(gone->ttl == 0);
  CHECK(gone->granted_ttl == 0);
  const auto live = decode_lease_time_to_live(
      R"({"header":{},"ID":"1234","TTL":"4","grantedTTL":"5","keys":["YQ=="]})");
  REQUIRE(live.ok());
  CHECK(live->ttl == 4);
  CHECK(live->granted_ttl == 5);
  REQUIRE(live->keys.size() == 1);
  CHECK(live->keys[0] == "a");

  const auto put = decode_put(
      R"({"header":{"revision":"3"},"prev_kv":{"key":"YQ==","create_revision":"2",
          "mod_revision":"2","version":"1","value":"MQ=="}})");
  REQUIRE(put.ok());
  REQUIRE(put->prev_kv.has_value());
  CHECK(put->prev_kv->value == "1");

  const auto grant = decode_lease_grant(R"({"header":{"revision":"4"},"ID":"411112","TTL":"5"})");
  REQUIRE(grant.ok());
  CHECK(grant->id == 411112);
  CHECK(grant->ttl == 5);
}

TEST_CASE("etcd codec maps error bodies to codes", "[etcd][codec]") {
  const auto lease = decode_error(
      404,
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  CHECK(lease.code == errc::not_found);
  CHECK(lease.http_status == 404);
  CHECK(lease.grpc_code == 5);
  CHECK(lease.message == "etcdserver: requested lease not found");

  const auto compacted = decode_error(
      400, R"({"error":"etcdserver: mvcc: required revision has been compacted","code":11})");
  CHECK(compacted.code == errc::compacted);
  const auto future = decode_error(
      400, R"({"error":"etcdserver: mvcc: required revision is a future revision","code":11})");
  CHECK(future.code == errc::http_error);
  CHECK(decode_error(503, R"({"error":"etcdserver: no leader","code":14})").code ==
        errc::unavailable);
  CHECK(decode_error(200, R"({"error":{"grpc_code":14,"http_code":503,"message":"x"}})").code ==
        errc::unavailable);
  const auto text = decode_error(404, "Not Found\n");
  CHECK(text.code == errc::http_error);
  CHECK(text.message == "Not Found");
  CHECK(decode_error(500, std::string("\xff\x00garbage", 9)).code == errc::http_error);

  const auto in_band = decode_lease_keepalive(
      R"({"error":{"grpc_code":5,"http_code":404,"message":"lease not found","http_status":"Not Found"}})");
  REQUIRE_FALSE(in_band.ok());
  CHECK(in_band.code() == errc::not_found);
  CHECK(in_band.err().http_status == 404);
}

TEST_CASE("etcd codec decodes watch lines with events", "[etcd][codec]") {
  const auto w = decode_watch_line(
      R"({"result":{"header":{"cluster_id":"1","revision":"7","raft_term":"2"},"events":[
          {"kv":{"key":"YQ==","create_revision":"5","mod_revision":"7","version":"2","value":"Mw==","lease":"99"},
           "prev_kv":{"key":"YQ==","create_revision":"5","mod_revision":"5","version":"1","value":"MQ=="}},
          {"type":"DELETE","kv":{"key":"YWI=","mod_revision":"7"}}]}})");
  REQUIRE(w.ok());
  CHECK(w->type == watch_response::kind::events);
  CHECK(w->revision == 7);
  REQUIRE(w->events.size() == 2);
  CHECK(w->events[0].type == watch_event::kind::put);  // PUT is the default: no "type"
  CHECK(w->events[0].kv.key == "a");
  CHECK(w->events[0].kv.value == "3");
  CHECK(w->events[0].kv.mod_revision == 7);
  CHECK(w->events[0].kv.lease == 99);
  REQUIRE(w->events[0].prev_kv.has_value());
  CHECK(w->events[0].prev_kv->value == "1");
  CHECK(w->events[1].type == watch_event::kind::del);
  CHECK(w->events[1].kv.key == "ab");
  CHECK(w->events[1].kv.mod_revision == 7);
  CHECK(w->events[1].kv.create_revision == 0);
  CHECK_FALSE(w->events[1].prev_kv.has_value());
}

TEST_CASE("etcd codec decodes watch created canceled compacted and progress", "[etcd][codec]") {
  const auto created =
      decode_watch_line(R"({"result":{"header":{"revision":"4"},"created":true}})");
  REQUIRE(created.ok());
  CHECK(created->type == watch_response::kind::created);
  CHECK(created->revision == 4);

  const auto compacted = decode_watch_line(
      R"({"result":{"header":{"cluster_id":"1","raft_term":"2"},"canceled":true,"compact_revision":"3"}})");
  REQUIRE(compacted.ok());
  CHECK(compacted->type == watch_response::kind::canceled);
  CHECK(compacted->compact_revision == 3);
  CHECK(compacted->revision == 0);

  const auto canceled = decode_watch_line(
      R"({"result":{"header":{"revision":"9"},"canceled":true,"cancel_reason":"permission denied"}})");
  REQUIRE(canceled.ok());
  CHECK(canceled->type == watch_response::kind::canceled);
  CHECK(canceled->compact_revision == 0);
  CHECK(canceled->cancel_reason == "permission denied");

  const auto progress = decode_watch_line(R"({"result":{"header":{"revision":"12"}}})");
  REQUIRE(progress.ok());
  CHECK(progress->type == watch_response::kind::progress);
  CHECK(progress->revision == 12);

  const auto in_band = decode_watch_line(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"no leader","http_status":"Service Unavailable"}})");
  REQUIRE_FALSE(in_band.ok());
  CHECK(in_band.code() == errc::unavailable);
}

TEST_CASE("etcd codec gives bad response for malformed input and never throws", "[etcd][codec]") {
  const char* inputs[] = {
      "",
      "not json",
      "[1,2]",
      "\"x\"",
      "{",
      R"({"header":{"revision":"12x"}})",
      R"({"header":{"revision":"99999999999999999999"}})",
      R"({"header":{"revision":true}})",
      R"({"header":[]})",
      R"({"kvs":{"key":"YQ=="}})",
      R"({"kvs":[{"key":"Y!=="}]})",
      R"({"kvs":[{"key":5}]})",
      R"({"kvs":[1]})",
      R"({"more":"yes"})",
      R"({"count":1.5})",
      R"({"succeeded":"true"})",
      R"({"responses":[{"response_what":{}}]})",
      R"({"responses":[5]})",
      R"({"result":{"events":[{"type":"UPDATE","kv":{"key":"YQ=="}}]}})",
      R"({"result":{"events":[{"type":"PUT"}]}})",
      R"({"result":{"events":"x"}})",
      R"({"result":7})",
      R"({"result":{"TTL":"abc"}})",
      R"({"error":{"grpc_code":"x"}})",
  };
  for (const char* in : inputs) {
    INFO(in);
    CHECK_NOTHROW(decode_range(in));
    CHECK_NOTHROW(decode_put(in));
    CHECK_NOTHROW(decode_delete(in));
    CHECK_NOTHROW(decode_txn(in));
    CHECK_NOTHROW(decode_lease_grant(in));
    CHECK_NOTHROW(decode_lease_keepalive(in));
    CHECK_NOTHROW(decode_lease_revoke(in));
    CHECK_NOTHROW(decode_lease_time_to_live(in));
    CHECK_NOTHROW(decode_compact(in));
    CHECK_NOTHROW(decode_watch_line(in));
    CHECK_NOTHROW(decode_error(500, in));
  }
  CHECK(decode_range("not json").code() == errc::bad_response);
  CHECK(decode_range(R"({"header":{"revision":"12x"}})").code() == errc::bad_response);
  CHECK(decode_range(R"({"kvs":[{"key":"Y!=="}]})").code() == errc::bad_response);
  CHECK(decode_txn(R"({"succeeded":"true"})").code() == errc::bad_response);
  CHECK(decode_txn(R"({"responses":[{"response_what":{}}]})").code() == errc::bad_response);
  CHECK(decode_lease_grant(R"({"TTL":"5"})").code() == errc::bad_response);  // no ID
  CHECK(decode_lease_keepalive(R"({"result":{"TTL":"abc"}})").code() == errc::bad_response);
  CHECK(decode_watch_line(R"({"result":{"events":[{"type":"UPDATE","kv":{}}]}})").code() ==
        errc::bad_response);
  CHECK(decode_watch_line(R"({"result":{"events":[{"type":"PUT"}]}})").code() ==
        errc::bad_response);
  CHECK(decode_watch_line("{}").code() == errc::bad_response);

  // Deep nesting is refused before parsing.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(decode_range(deep).code() == errc::bad_response);
  const std::string deep_obj = "{\"a\":" + std::string(50, '[') + std::string(50, ']') + "}";
  CHECK(decode_watch_line(deep_obj).code() == errc::bad_response);
  // Brackets inside strings do not count as nesting.
  CHECK(decode_range(R"({"x":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})").ok());
}

TEST_CASE("etcd codec line buffer splits lines across chunks and bounds them", "[etcd][codec]") {
  line_buffer lines(16);
  CHECK_FALSE(lines.pop().has_value());
  REQUIRE(lines.append("{\"a\":"));
  CHECK_FALSE(lines.pop().has_value());
  REQUIRE(lines.append("1}\n{\"b\""));
  auto first = lines.pop();
  REQUIRE(first.has_value());
  CHECK(*first == "{\"a\":1}");
  CHECK_FALSE(lines.pop().has_value());
  REQUIRE(lines.append(":2}\r\n\n"));
  CHECK(lines.pop() == std::optional<std::string>("{\"b\":2}"));
  CHECK(lines.pop() == std::optional<std::string>(""));
  CHECK_FALSE(lines.pop().has_value());
  CHECK(lines.pending() == 0);

  // A line of exactly the bound fits; one byte more overflows, even when split over appends.
  REQUIRE(lines.append(std::string(16, 'x') + "\n"));
  CHECK(lines.pop()->size() == 16);
  REQUIRE(lines.append(std::string(10, 'y')));
  CHECK_FALSE(lines.append(std::string(7, 'y')));
  CHECK(lines.overflowed());
  CHECK_FALSE(lines.append("\n"));

  // A complete line over the bound in one append overflows too.
  line_buffer other(4);
  CHECK_FALSE(other.append("12345\n"));
  CHECK(other.overflowed());
}
