// SPDX-License-Identifier: Apache-2.0
//
// examples/common/json_reader.h
//
// A small strict JSON (RFC 8259) reader for broker control frames, built
// because Debian 12 ships no C++ JSON library the project may rely on.
//
//   json::Document  parses one text into a flat token array (jsmn-style) that
//                   points into the text: no string is copied. The token
//                   buffer is reused, so parsing documents of a size seen
//                   before allocates nothing.
//   json::Value     a cheap view of one value: member lookup by key, array
//                   and object iteration, and typed reads that return
//                   nullopt on a type mismatch (never throw, never assert).
//   append_quoted() writes a JSON string literal, for building requests.
//
// Guarantees: any byte sequence is either parsed or rejected with a
// JsonError; nesting is limited (kMaxDepth) so hostile input cannot exhaust
// the stack; nothing reads outside the text. Strings are validated (escapes,
// no raw control characters) but UTF-8 is passed through unchecked.
//
// Lifetime: Values and the string_views they return point into the text
// given to parse() and into the Document; both must outlive them, and the
// next parse() invalidates them.
//
// Thread safety: thread-compatible.
//
// Example:
//   examples::json::Document doc;
//   if (doc.parse(frame) != examples::json::JsonError::none) return reject();
//   auto msg_cd = doc.root()["body"]["msg_cd"].plain_string();  // optional
//   for (examples::json::Value entry : doc.root()["data"].elements()) { … }
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace examples::json {

enum class JsonError : std::uint8_t {
  none,
  empty,                 // no value at all
  unexpected_character,  // not valid JSON at this point
  unterminated,          // the text ends inside a value
  bad_string,            // bad escape or raw control character
  bad_number,
  too_deep,             // nesting beyond kMaxDepth
  too_large,            // more than kMaxTokens values or > 4 GiB of text
  trailing_characters,  // something after the top-level value
};
std::string_view to_string(JsonError error) noexcept;

enum class Type : std::uint8_t { null, boolean, number, string, array, object };

inline constexpr std::size_t kMaxDepth = 32;
inline constexpr std::size_t kMaxTokens = 1 << 20;

class Document;

class Value {
 public:
  Value() = default;  // a missing value: every read returns nullopt

  bool exists() const noexcept { return doc_ != nullptr; }
  bool is(Type type) const noexcept;

  // Returns the member named `key` of an object, or a missing Value (not an
  // object, or no such member). With duplicate keys, the first wins.
  Value operator[](std::string_view key) const noexcept;

  // Returns a string's contents if it holds no escapes (the common case for
  // codes, keys and numbers-as-strings), else nullopt. Never allocates.
  std::optional<std::string_view> plain_string() const noexcept;
  // Returns a string's decoded contents (escapes resolved; \u0000 and lone
  // surrogates become U+FFFD), or nullopt if not a string.
  std::optional<std::string> decoded_string() const;
  // Returns a string's contents as they appear in the text, escapes
  // undecoded, or nullopt if not a string. Never allocates.
  std::optional<std::string_view> raw_string() const noexcept;
  // Returns a number that is an integer in int64 range ("12", "-3"), or
  // nullopt (not a number, a fraction or exponent, out of range).
  std::optional<std::int64_t> integer() const noexcept;
  // Returns the value of true/false, or nullopt.
  std::optional<bool> boolean() const noexcept;

  // The number of elements (array) or members (object); 0 otherwise.
  std::size_t size() const noexcept;

  class ElementIterator;
  class MemberIterator;
  struct Member;
  template <class Iterator>
  struct Range {
    Iterator first, last;
    Iterator begin() const noexcept { return first; }
    Iterator end() const noexcept { return last; }
  };
  // Iterates an array's elements; empty when not an array.
  Range<ElementIterator> elements() const noexcept;
  // Iterates an object's members; empty when not an object.
  Range<MemberIterator> members() const noexcept;

 private:
  friend class Document;
  Value(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
  const Document* doc_ = nullptr;
  std::uint32_t index_ = 0;
};

struct Value::Member {
  Value key;  // a string Value
  Value value;
};

class Value::ElementIterator {
 public:
  Value operator*() const noexcept { return {doc_, index_}; }
  ElementIterator& operator++() noexcept;
  bool operator==(const ElementIterator& other) const noexcept {
    return index_ == other.index_;
  }

 private:
  friend class Value;
  ElementIterator(const Document* doc, std::uint32_t index)
      : doc_(doc), index_(index) {}
  const Document* doc_ = nullptr;
  std::uint32_t index_ = 0;
};

class Value::MemberIterator {
 public:
  Member operator*() const noexcept;
  MemberIterator& operator++() noexcept;
  bool operator==(const MemberIterator& other) const noexcept {
    return index_ == other.index_;
  }

 private:
  friend class Value;
  MemberIterator(const Document* doc, std::uint32_t index)
      : doc_(doc), index_(index) {}
  const Document* doc_ = nullptr;
  std::uint32_t index_ = 0;  // of the key token
};

class Document {
 public:
  // Parses `text`, which must outlive this document's Values. Returns none
  // or the first error found; after an error root() is missing.
  JsonError parse(std::string_view text);

  // Returns the top-level value (missing when the last parse failed).
  Value root() const noexcept;

 private:
  friend class Value;
  struct Token {
    Type type = Type::null;
    bool escaped = false;      // a string holding backslash escapes
    std::uint32_t begin = 0;   // text offset (strings: after the quote)
    std::uint32_t length = 0;  // text length (strings: without quotes)
    std::uint32_t next = 0;    // index one past this value's subtree
    std::uint32_t count = 0;   // elements, or members
  };
  class Parser;

  std::string_view text(const Token& token) const noexcept {
    return text_.substr(token.begin, token.length);
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  bool ok_ = false;
};

// Appends `text` as a JSON string literal (with quotes) to `out`, escaping
// quotes, backslashes and control characters.
void append_quoted(std::string& out, std::string_view text);

}  // namespace examples::json
