// Tests for client/terminal_text: what orderctl prints from a reply cannot fake a line or
// drive the terminal, and ordinary UTF-8 stays readable.
#include <catch2/catch.hpp>

#include <string>

#include "client/terminal_text.hpp"

using ordermesh::client::printable;
using ordermesh::client::printable_json_line;

TEST_CASE("printable escapes control bytes DEL and ESC") {
  CHECK(printable("plain name") == "plain name");
  CHECK(printable("a\nb") == "a\\x0ab");
  CHECK(printable("a\rb\tc") == "a\\x0db\\x09c");
  CHECK(printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
  CHECK(printable(std::string("nul\0byte", 8)) == "nul\\x00byte");
  CHECK(printable("del\x7f") == "del\\x7f");
  CHECK(printable("back\\slash") == "back\\slash");
  CHECK(printable("") == "");
}

TEST_CASE("printable keeps UTF-8 but escapes C1 controls and bytes that are not UTF-8") {
  CHECK(printable("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
  CHECK(printable("csi\xc2\x9b"
                  "31m") == "csi\\u009b31m");                      // U+009B, the one-byte CSI
  CHECK(printable("\xc2\x85") == "\\u0085");                       // NEL
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");                      // U+00A0 is printable
  CHECK(printable("lone\x9b") == "lone\\x9b");                     // raw 8-bit CSI
  CHECK(printable("\xc3") == "\\xc3");                             // truncated sequence
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");                    // overlong
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");           // surrogate
  CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST_CASE("printable json line keeps JSON valid") {
  CHECK(printable_json_line(R"({"id":1,"ok":true,"result":{"name":"x"}})") ==
        R"({"id":1,"ok":true,"result":{"name":"x"}})");
  CHECK(printable_json_line("{\"name\":\"a\x7f\xc2\x9b\"}") == "{\"name\":\"a\\u007f\\u009b\"}");
  CHECK(printable_json_line("{\"n\":\"\x1b\"}") == "{\"n\":\"\\u001b\"}");
}
