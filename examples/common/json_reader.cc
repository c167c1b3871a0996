// SPDX-License-Identifier: Apache-2.0
#include "common/json_reader.h"

#include <charconv>
#include <limits>
#include <system_error>

namespace examples::json {

std::string_view to_string(JsonError error) noexcept {
  switch (error) {
    case JsonError::none:
      return "none";
    case JsonError::empty:
      return "empty";
    case JsonError::unexpected_character:
      return "unexpected_character";
    case JsonError::unterminated:
      return "unterminated";
    case JsonError::bad_string:
      return "bad_string";
    case JsonError::bad_number:
      return "bad_number";
    case JsonError::too_deep:
      return "too_deep";
    case JsonError::too_large:
      return "too_large";
    case JsonError::trailing_characters:
      return "trailing_characters";
  }
  return "unknown";
}

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the 4 hex digits at raw[at..at+4) (validated by the parser).
std::uint32_t hex4(std::string_view raw, std::size_t at) noexcept {
  std::uint32_t value = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    value = value * 16 + static_cast<std::uint32_t>(hex_value(raw[i]));
  }
  return value;
}

template <class Sink>
void emit_utf8(std::uint32_t cp, Sink& sink) {
  if (cp < 0x80) {
    sink(static_cast<char>(cp));
  } else if (cp < 0x800) {
    sink(static_cast<char>(0xC0 | (cp >> 6)));
    sink(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    sink(static_cast<char>(0xE0 | (cp >> 12)));
    sink(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    sink(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    sink(static_cast<char>(0xF0 | (cp >> 18)));
    sink(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    sink(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    sink(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Feeds the decoded bytes of a validated raw string to `sink`.
template <class Sink>
void decode(std::string_view raw, Sink&& sink) {
  constexpr std::uint32_t kReplacement = 0xFFFD;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      sink(raw[i]);
      continue;
    }
    const char e = raw[++i];
    switch (e) {
      case 'b':
        sink('\b');
        break;
      case 'f':
        sink('\f');
        break;
      case 'n':
        sink('\n');
        break;
      case 'r':
        sink('\r');
        break;
      case 't':
        sink('\t');
        break;
      case 'u': {
        std::uint32_t cp = hex4(raw, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
          // A high surrogate: valid only with a low one right after it.
          if (i + 6 < raw.size() && raw[i + 1] == '\\' && raw[i + 2] == 'u') {
            const std::uint32_t low = hex4(raw, i + 3);
            if (low >= 0xDC00 && low < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              i += 6;
            } else {
              cp = kReplacement;
            }
          } else {
            cp = kReplacement;
          }
        } else if ((cp >= 0xDC00 && cp < 0xE000) || cp == 0) {
          cp = kReplacement;
        }
        emit_utf8(cp, sink);
        break;
      }
      default:  // '"', '\\', '/'
        sink(e);
        break;
    }
  }
}

}  // namespace

class Document::Parser {
 public:
  Parser(std::string_view text, std::vector<Token>& tokens)
      : text_(text), tokens_(tokens) {}

  JsonError run() {
    if (text_.size() >= std::numeric_limits<std::uint32_t>::max()) {
      return JsonError::too_large;
    }
    skip_whitespace();
    if (at_end()) return JsonError::empty;
    if (JsonError e = value(0); e != JsonError::none) return e;
    skip_whitespace();
    return at_end() ? JsonError::none : JsonError::trailing_characters;
  }

 private:
  bool at_end() const noexcept { return pos_ >= text_.size(); }
  char peek() const noexcept { return text_[pos_]; }

  void skip_whitespace() noexcept {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                         peek() == '\r')) {
      ++pos_;
    }
  }

  // Appends a token starting at pos_; returns its index, or nullopt when
  // the document has too many values.
  std::optional<std::uint32_t> add(Type type) {
    if (tokens_.size() >= kMaxTokens) return std::nullopt;
    Token token;
    token.type = type;
    token.begin = static_cast<std::uint32_t>(pos_);
    tokens_.push_back(token);
    return static_cast<std::uint32_t>(tokens_.size() - 1);
  }

  // Closes token `index`, whose text ends at pos_.
  void finish(std::uint32_t index) {
    Token& token = tokens_[index];
    token.length = static_cast<std::uint32_t>(pos_) - token.begin;
    token.next = static_cast<std::uint32_t>(tokens_.size());
  }

  JsonError value(std::size_t depth) {
    if (at_end()) return JsonError::unterminated;
    switch (peek()) {
      case '{':
        return container(depth, Type::object, '}');
      case '[':
        return container(depth, Type::array, ']');
      case '"':
        return string();
      case 't':
        return literal("true", Type::boolean);
      case 'f':
        return literal("false", Type::boolean);
      case 'n':
        return literal("null", Type::null);
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number();
        return JsonError::unexpected_character;
    }
  }

  JsonError container(std::size_t depth, Type type, char close) {
    if (depth >= kMaxDepth) return JsonError::too_deep;
    const std::optional<std::uint32_t> index = add(type);
    if (!index) return JsonError::too_large;
    ++pos_;  // '{' or '['
    skip_whitespace();
    std::uint32_t count = 0;
    if (!at_end() && peek() == close) {
      ++pos_;
    } else {
      while (true) {
        if (type == Type::object) {
          if (at_end()) return JsonError::unterminated;
          if (peek() != '"') return JsonError::unexpected_character;
          if (JsonError e = string(); e != JsonError::none) return e;
          skip_whitespace();
          if (at_end()) return JsonError::unterminated;
          if (peek() != ':') return JsonError::unexpected_character;
          ++pos_;
          skip_whitespace();
        }
        if (JsonError e = value(depth + 1); e != JsonError::none) return e;
        ++count;
        skip_whitespace();
        if (at_end()) return JsonError::unterminated;
        if (peek() == ',') {
          ++pos_;
          skip_whitespace();
          continue;
        }
        if (peek() != close) return JsonError::unexpected_character;
        ++pos_;
        break;
      }
    }
    finish(*index);
    tokens_[*index].count = count;
    return JsonError::none;
  }

  JsonError string() {
    ++pos_;  // opening quote
    const std::optional<std::uint32_t> index = add(Type::string);
    if (!index) return JsonError::too_large;
    bool escaped = false;
    while (true) {
      if (at_end()) return JsonError::unterminated;
      const char c = peek();
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) return JsonError::bad_string;
      if (c == '\\') {
        escaped = true;
        if (++pos_ >= text_.size()) return JsonError::unterminated;
        const char e = peek();
        if (e == 'u') {
          for (int i = 0; i < 4; ++i) {
            if (++pos_ >= text_.size()) return JsonError::unterminated;
            if (hex_value(peek()) < 0) return JsonError::bad_string;
          }
        } else if (std::string_view("\"\\/bfnrt").find(e) ==
                   std::string_view::npos) {
          return JsonError::bad_string;
        }
      }
      ++pos_;
    }
    finish(*index);  // excludes the closing quote
    tokens_[*index].escaped = escaped;
    ++pos_;
    return JsonError::none;
  }

  JsonError literal(std::string_view word, Type type) {
    if (text_.substr(pos_, word.size()) != word) {
      return text_.size() - pos_ < word.size() &&
                     word.substr(0, text_.size() - pos_) == text_.substr(pos_)
                 ? JsonError::unterminated
                 : JsonError::unexpected_character;
    }
    const std::optional<std::uint32_t> index = add(type);
    if (!index) return JsonError::too_large;
    pos_ += word.size();
    finish(*index);
    return JsonError::none;
  }

  JsonError number() {
    const std::optional<std::uint32_t> index = add(Type::number);
    if (!index) return JsonError::too_large;
    const auto digits = [this] {
      const std::size_t start = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - start;
    };
    if (peek() == '-') ++pos_;
    if (!at_end() && peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return JsonError::bad_number;
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) return JsonError::bad_number;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) return JsonError::bad_number;
    }
    finish(*index);
    return JsonError::none;
  }

  std::string_view text_;
  std::vector<Token>& tokens_;
  std::size_t pos_ = 0;
};

JsonError Document::parse(std::string_view text) {
  text_ = text;
  tokens_.clear();
  const JsonError error = Parser(text, tokens_).run();
  ok_ = error == JsonError::none;
  return error;
}

Value Document::root() const noexcept { return ok_ ? Value(this, 0) : Value(); }

bool Value::is(Type type) const noexcept {
  return doc_ != nullptr && doc_->tokens_[index_].type == type;
}

Value Value::operator[](std::string_view key) const noexcept {
  for (const Member member : members()) {
    const auto& token = doc_->tokens_[member.key.index_];
    const std::string_view raw = doc_->text(token);
    if (!token.escaped) {
      if (raw == key) return member.value;
      continue;
    }
    std::size_t matched = 0;
    bool equal = true;
    decode(raw, [&](char c) {
      equal = equal && matched < key.size() && key[matched] == c;
      ++matched;
    });
    if (equal && matched == key.size()) return member.value;
  }
  return {};
}

std::optional<std::string_view> Value::plain_string() const noexcept {
  if (!is(Type::string) || doc_->tokens_[index_].escaped) return std::nullopt;
  return doc_->text(doc_->tokens_[index_]);
}

std::optional<std::string_view> Value::raw_string() const noexcept {
  if (!is(Type::string)) return std::nullopt;
  return doc_->text(doc_->tokens_[index_]);
}

std::optional<std::string> Value::decoded_string() const {
  if (!is(Type::string)) return std::nullopt;
  std::string out;
  decode(doc_->text(doc_->tokens_[index_]), [&](char c) { out += c; });
  return out;
}

std::optional<std::int64_t> Value::integer() const noexcept {
  if (!is(Type::number)) return std::nullopt;
  const std::string_view text = doc_->text(doc_->tokens_[index_]);
  std::int64_t value = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Value::boolean() const noexcept {
  if (!is(Type::boolean)) return std::nullopt;
  return doc_->text(doc_->tokens_[index_]) == "true";
}

std::size_t Value::size() const noexcept {
  if (!is(Type::array) && !is(Type::object)) return 0;
  return doc_->tokens_[index_].count;
}

Value::Range<Value::ElementIterator> Value::elements() const noexcept {
  if (!is(Type::array)) return {{nullptr, 0}, {nullptr, 0}};
  const auto& token = doc_->tokens_[index_];
  return {{doc_, index_ + 1}, {doc_, token.next}};
}

Value::Range<Value::MemberIterator> Value::members() const noexcept {
  if (!is(Type::object)) return {{nullptr, 0}, {nullptr, 0}};
  const auto& token = doc_->tokens_[index_];
  return {{doc_, index_ + 1}, {doc_, token.next}};
}

Value::ElementIterator& Value::ElementIterator::operator++() noexcept {
  index_ = doc_->tokens_[index_].next;
  return *this;
}

Value::Member Value::MemberIterator::operator*() const noexcept {
  return {Value(doc_, index_), Value(doc_, index_ + 1)};
}

Value::MemberIterator& Value::MemberIterator::operator++() noexcept {
  index_ = doc_->tokens_[index_ + 1].next;  // past the value's subtree
  return *this;
}

void append_quoted(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace examples::json
