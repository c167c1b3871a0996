// Test that header file is self-contained.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/codec_stats.h"
#include "common/json_reader.h"
#include "common/market_events.h"

// The pieces the broker codecs share (examples/common): the JSON reader,
// the field parsers and Price, base64.

namespace examples {
namespace {

using json::Document;
using json::JsonError;
using json::Type;

// --- JSON reader
// --------------------------------------------------------------

TEST(JsonReader, ReadsNestedObjectsArraysAndScalars) {
  Document doc;
  ASSERT_EQ(doc.parse(R"( {"a":{"b":[1,-2,{"c":"d"}],"t":true,"n":null},)"
                      R"("e":"", "x":1.5e3} )"),
            JsonError::none);
  const json::Value root = doc.root();
  EXPECT_EQ(root.size(), 3u);
  const json::Value b = root["a"]["b"];
  ASSERT_TRUE(b.is(Type::array));
  std::vector<std::string> kinds;
  for (const json::Value element : b.elements()) {
    kinds.push_back(element.is(Type::number) ? "number" : "other");
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"number", "number", "other"}));
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(root["a"]["t"].boolean(), true);
  EXPECT_TRUE(root["a"]["n"].is(Type::null));
  EXPECT_EQ(root["e"].plain_string(), "");
  EXPECT_FALSE(root["x"].integer());  // 1.5e3 is no integer literal
  std::vector<std::string> keys;
  for (const json::Value::Member m : root.members()) {
    keys.emplace_back(*m.key.plain_string());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "e", "x"}));
}

TEST(JsonReader, MissingValuesReadAsNullopt) {
  Document doc;
  ASSERT_EQ(doc.parse(R"({"a":"1","n":7})"), JsonError::none);
  const json::Value root = doc.root();
  EXPECT_FALSE(root["zz"].exists());
  EXPECT_FALSE(root["zz"]["deeper"].plain_string());
  EXPECT_FALSE(root["a"].integer());       // a string, not a number
  EXPECT_FALSE(root["n"].plain_string());  // a number, not a string
  EXPECT_EQ(root["n"].integer(), 7);
  EXPECT_TRUE(root["a"].elements().begin() == root["a"].elements().end());
  EXPECT_EQ(root["n"].size(), 0u);
}

TEST(JsonReader, DecodesEscapesIncludingSurrogatePairs) {
  Document doc;
  ASSERT_EQ(doc.parse(R"({"s":"a\"b\\c\/\n\u00e9\ud83d\ude00\ud800x\u0000",)"
                      R"("k\u0065y":1})"),
            JsonError::none);
  const json::Value s = doc.root()["s"];
  EXPECT_FALSE(s.plain_string());  // escapes: no raw view
  EXPECT_EQ(s.decoded_string(),
            "a\"b\\c/\n\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx\xef\xbf\xbd");
  EXPECT_EQ(doc.root()["key"].integer(), 1);  // escaped keys still match
}

TEST(JsonReader, RejectsMalformedTextWithItsReason) {
  const std::pair<std::string_view, JsonError> cases[] = {
      {"", JsonError::empty},
      {"   ", JsonError::empty},
      {"{", JsonError::unterminated},
      {R"({"a":)", JsonError::unterminated},
      {R"({"a")", JsonError::unterminated},
      {R"(["a)", JsonError::unterminated},
      {"tru", JsonError::unterminated},
      {"{a:1}", JsonError::unexpected_character},
      {"[1,]", JsonError::unexpected_character},
      {R"({"a":1,})", JsonError::unexpected_character},
      {"nul1", JsonError::unexpected_character},
      {"'a'", JsonError::unexpected_character},
      {"\"a\tb\"", JsonError::bad_string},
      {R"("\x")", JsonError::bad_string},
      {R"("\u12g4")", JsonError::bad_string},
      {"-", JsonError::bad_number},
      {"1.", JsonError::bad_number},
      {"1e+", JsonError::bad_number},
      {"01", JsonError::trailing_characters},
      {"{} {}", JsonError::trailing_characters},
  };
  for (const auto& [text, error] : cases) {
    Document doc;
    EXPECT_EQ(doc.parse(text), error) << text;
    EXPECT_FALSE(doc.root().exists()) << text;
  }
}

TEST(JsonReader, LimitsNestingInsteadOfExhaustingTheStack) {
  Document doc;
  const std::string deep =
      std::string(json::kMaxDepth, '[') + std::string(json::kMaxDepth, ']');
  EXPECT_EQ(doc.parse(deep), JsonError::none);
  const std::string deeper(100'000, '[');
  EXPECT_EQ(doc.parse(deeper), JsonError::too_deep);
}

TEST(JsonReader, QuotesStringsForRequests) {
  std::string out;
  json::append_quoted(out, "a\"b\\c\n\x01\xc3\xa9");
  EXPECT_EQ(out, R"("a\"b\\c\u000a\u0001)"
                 "\xc3\xa9\"");
  Document doc;
  ASSERT_EQ(doc.parse(out), JsonError::none);
  EXPECT_EQ(doc.root().decoded_string(), "a\"b\\c\n\x01\xc3\xa9");
}

// --- Field parsers and Price
// ------------------------------------------------------

TEST(MarketEvents, ParsesSignedDecimalPricesExactly) {
  EXPECT_EQ(parse_price("71500"), Price::from_units(71500));
  EXPECT_EQ(parse_price("+82")->nanos(), 82 * Price::kScale);
  EXPECT_EQ(parse_price("-20800")->abs(), *Price::from_units(20800));
  EXPECT_EQ(parse_price("61.25")->nanos(), 61'250'000'000);
  EXPECT_EQ(parse_price("0.000000001")->nanos(), 1);
  EXPECT_EQ(parse_price("61.25")->to_string(), "61.25");
  EXPECT_EQ(parse_price("-0.5")->to_string(), "-0.5");
  EXPECT_EQ(parse_price("71500.000")->to_string(), "71500");
  for (std::string_view bad :
       {"", "+", "-", ".5", "5.", "1.0000000001", "1,000", " 1", "1 ", "0x10",
        "--1", "1e3", "9223372037"}) {
    EXPECT_FALSE(parse_price(bad)) << bad;
  }
  EXPECT_TRUE(parse_price("9223372036"));  // the largest whole number
}

TEST(MarketEvents, BuildsPricesFromMoney) {
  EXPECT_EQ(Price::from_money(61, 250'000'000), parse_price("61.25"));
  EXPECT_EQ(Price::from_money(-1, -500'000'000), parse_price("-1.5"));
  EXPECT_EQ(Price::from_money(0, -5)->nanos(), -5);
  EXPECT_FALSE(Price::from_money(1, -5));             // signs disagree
  EXPECT_FALSE(Price::from_money(0, 1'000'000'000));  // nanos out of range
  EXPECT_FALSE(Price::from_money(INT64_MAX, 0));
  EXPECT_FALSE(Price::from_money(9'223'372'036, 900'000'000));  // overflow
}

TEST(MarketEvents, ParsesIntegersTimesAndDates) {
  EXPECT_EQ(parse_int("+82"), 82);
  EXPECT_EQ(parse_int("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(parse_int("9223372036854775808"));
  EXPECT_FALSE(parse_int(""));
  EXPECT_FALSE(parse_int("1.0"));
  EXPECT_EQ(parse_hhmmss("093015"), 9 * 3600 + 30 * 60 + 15);
  EXPECT_EQ(parse_hhmmss("235959"), 86399);
  EXPECT_FALSE(parse_hhmmss("240000"));
  EXPECT_FALSE(parse_hhmmss("09301"));
  EXPECT_FALSE(parse_hhmmss("0930a5"));
  EXPECT_EQ(parse_yyyymmdd("20260715"), 20260715);
  EXPECT_FALSE(parse_yyyymmdd("20261301"));
  EXPECT_FALSE(parse_yyyymmdd("20260700"));
  EXPECT_FALSE(parse_yyyymmdd("2026071"));
}

TEST(MarketEvents, ReadsLevelsWithTheSignRuleOfTheFeed) {
  Level level;
  EXPECT_EQ(read_level("-20800", "82", PriceSign::absolute, level),
            FieldError::none);
  EXPECT_EQ(level, (Level{*Price::from_units(20800), 82}));
  EXPECT_EQ(read_level("-20800", "82", PriceSign::reject, level),
            FieldError::price);
  EXPECT_EQ(read_level("1", "-1", PriceSign::reject, level),
            FieldError::quantity);
  Level empty;
  EXPECT_EQ(read_level("", "", PriceSign::reject, empty), FieldError::none);
  EXPECT_EQ(empty, Level{});
  std::optional<std::int64_t> quantity = 5;
  EXPECT_TRUE(read_optional_quantity("", quantity));
  EXPECT_EQ(quantity, std::nullopt);
  EXPECT_FALSE(read_optional_quantity("-3", quantity));
}

TEST(MarketEvents, SymbolsArePrintableAndBounded) {
  EXPECT_EQ(Symbol::from("005930_AL")->view(), "005930_AL");
  EXPECT_FALSE(Symbol::from(""));
  EXPECT_FALSE(Symbol::from("A B"));
  EXPECT_FALSE(Symbol::from("\xc3\xa9"));
  EXPECT_FALSE(Symbol::from(std::string(Symbol::kCapacity + 1, 'A')));
  EXPECT_TRUE(Symbol::from(std::string(Symbol::kCapacity, 'A')));
}

TEST(MarketEvents, AppendsServerTextPrintableAndBounded) {
  std::string out;
  append_printable(out, "ok \"quoted\"\n\x01", 64);
  EXPECT_EQ(out, "ok ?quoted???");
  out.clear();
  append_printable(out, "\xea\xb0\x80\xea\xb0\x80", 4);  // "가가", 3 bytes each
  EXPECT_EQ(out, "\xea\xb0\x80");  // never half a character
}

// --- base64 and counters
// ---------------------------------------------------------

TEST(Base64, DecodesStrictlyOrWithOptionalPadding) {
  std::string out;
  ASSERT_TRUE(base64_decode("QUJD", out));
  EXPECT_EQ(out, "ABC");
  ASSERT_TRUE(base64_decode("QUI=", out));
  EXPECT_EQ(out, "AB");
  ASSERT_TRUE(base64_decode("QQ==", out));
  EXPECT_EQ(out, "A");
  EXPECT_FALSE(base64_decode("QUI", out));
  ASSERT_TRUE(base64_decode("QUI", out, Base64Padding::optional));
  EXPECT_EQ(out, "AB");
  for (std::string_view bad :
       {"", "Q", "QQ=", "Q===", "QU=I", "QU I", "QU-_"}) {
    EXPECT_FALSE(base64_decode(bad, out, Base64Padding::optional)) << bad;
  }
  EXPECT_EQ(hex_encode(std::string("\x00\x9f\xff", 3)), "009fff");
}

TEST(RejectCounts, CountsEveryReasonButNone) {
  enum class Reason { none, a, b };
  RejectCounts<Reason, 3> counts;
  counts.add(Reason::none);
  counts.add(Reason::a);
  counts.add(Reason::b);
  counts.add(Reason::b);
  EXPECT_EQ(counts[Reason::none], 0u);
  EXPECT_EQ(counts[Reason::b], 2u);
  EXPECT_EQ(counts.total(), 3u);
  EXPECT_TRUE((DecodeResult<Reason>{}).ok());
  EXPECT_FALSE((DecodeResult<Reason>{Reason::a, 0}).ok());
}

}  // namespace
}  // namespace examples
