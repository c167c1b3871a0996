// SPDX-License-Identifier: Apache-2.0
//
// examples/kiwoom/kiwoom_codec.h
//
// The wire codec of Kiwoom's REST API realtime WebSocket
// (reference/broker-protocols.md §2): pure functions and one stateful
// decoder, no I/O. Every frame is JSON with a "trnm":
//
//   Requests   token_request_body() / parse_token_response() for POST
//              /oauth2/token; login_frame() {"trnm":"LOGIN","token":…};
//              registration_frame() REG (with grp_no and refresh) / REMOVE
//              of items × types. Subscription keys are "<type>|<item>",
//              e.g. "0B|005930" (types are case-sensitive: 0g ≠ 0G).
//   Data       REAL: a LIST of entries, each {type, name, item, values}
//              with FID-keyed string values. KiwoomCodec::decode() reads
//              every entry: 0B → Trade (price FID 10 is signed against the
//              previous close: its absolute value is the price; the sign of
//              FID 15 is the aggressor), 0D → 10-level Book; other types
//              are skipped (counted). Empty values are absent values.
//   Control    KiwoomCodec::read() classifies LOGIN / REG / REMOVE replies
//              (return_code as an integer or a string), PING (echo it
//              back as received), SYSTEM (R10001: another session with the
//              same app key took over; R10002: heartbeats missed; never
//              echoed) and REAL.
//
// Guarantees: any byte sequence is either accepted or rejected with exactly
// one KiwoomError, counted in stats(); a rejected REAL frame appends no
// event (all or nothing). Never throws, never reads outside the frame.
// Secrets (appkey, secretkey, token) never appear in errors or stats.
//
// Thread safety: the free functions are thread-safe; KiwoomCodec is
// thread-compatible (use it on the connection's strand).
//
// Example:
//   auto codec = examples::kiwoom::KiwoomCodec::create().value();
//   std::vector<examples::MarketEvent> events;
//   auto result = codec.decode(R"({"trnm":"REAL","data":[…]})", events);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/codec_stats.h"
#include "common/json_reader.h"
#include "common/market_events.h"

namespace examples::kiwoom {

inline constexpr std::string_view kTradeType = "0B";  // 주식체결
inline constexpr std::string_view kBookType = "0D";   // 주식호가잔량

// --- Requests ---------------------------------------------------------------

// Returns the JSON body of POST {REST}/oauth2/token (au10001).
std::string token_request_body(std::string_view appkey,
                               std::string_view secretkey);

struct AccessToken {
  std::string token;       // secret: never log it
  std::string expires_dt;  // "YYYYMMDDHHMMSS", KST, as sent
  // expires_dt as a point in time (KST = UTC+9, no daylight saving).
  std::chrono::system_clock::time_point expires_at;
};

// Returns the token of an /oauth2/token response, or kInvalidArgument /
// kPermissionDenied saying what is wrong (with return_code and the broker's
// return_msg, never the token or the request).
absl::StatusOr<AccessToken> parse_token_response(std::string_view body);

// Returns {"trnm":"LOGIN","token":"<token>"} (no "Bearer").
std::string login_frame(std::string_view token);

enum class Registration : std::uint8_t { reg, remove };

struct RegistrationOptions {
  std::string grp_no = "1";   // 1-4 digits
  std::string refresh = "1";  // REG only: "1" keeps earlier registrations,
                              // "0" drops them (then one key per REG frame
                              // would keep only the last one)

  static RegistrationOptions suggested() { return {}; }
  // Returns OK or kInvalidArgument naming the bad field.
  absl::Status validate() const;
};

// Returns a REG or REMOVE frame:
// {"trnm":"REG","grp_no":"1","refresh":"1","data":[{"item":[…],"type":[…]}]}
// (REMOVE has no "refresh").
std::string registration_frame(Registration kind,
                               const std::vector<std::string_view>& items,
                               const std::vector<std::string_view>& types,
                               const RegistrationOptions& options = {});

// Returns "<type>|<item>".
std::string subscription_key(std::string_view type, std::string_view item);

struct KeyParts {
  std::string_view type;
  std::string_view item;
};
// Returns the parts of "<type>|<item>" (both non-empty), or nullopt.
std::optional<KeyParts> split_subscription_key(std::string_view key) noexcept;

// --- Frames -----------------------------------------------------------------

// Why a frame was rejected. Names (to_string) are stable, for stats.
enum class KiwoomError : std::uint8_t {
  none,
  bad_json,
  no_trnm,    // not an object with a string "trnm"
  not_real,   // decode() of a frame whose trnm is not REAL
  bad_data,   // REAL without a "data" list
  bad_entry,  // an entry without string type/item or object values
  bad_value,  // a FID value that is not a string
  bad_symbol,
  bad_time,
  bad_price,
  bad_quantity,
  bad_return_code,  // a reply whose return_code is no integer
};
inline constexpr std::size_t kKiwoomErrorCount = 12;
std::string_view to_string(KiwoomError error) noexcept;

enum class MessageKind : std::uint8_t {
  real,    // market data: decode() it
  login,   // LOGIN reply
  reg,     // REG reply
  remove,  // REMOVE reply
  ping,    // PING: send the frame back as received
  system,  // SYSTEM notice (code in `code`)
  other,   // another trnm (e.g. CNSRLST): nothing to do
};
std::string_view to_string(MessageKind kind) noexcept;

// A frame as read by read(); views point into the frame (return_msg and
// message may hold JSON escapes; server text, never a secret).
struct Message {
  KiwoomError error = KiwoomError::none;  // none, bad_json, no_trnm,
                                          // bad_return_code
  MessageKind kind = MessageKind::other;
  std::string_view trnm;
  std::int64_t return_code = 0;  // LOGIN / REG / REMOVE; 0 = OK
  std::string_view return_msg;
  std::string_view code;     // SYSTEM: "R10001", …
  std::string_view message;  // SYSTEM
};

// Returns true for a LOGIN failure that a fresh token may cure: return_code
// 8005 (token invalid), 8031 (real/mock mismatch) or 8103 (token or
// terminal authentication failed), also when only return_msg names them as
// "CODE=8005" (the broker may wrap them in a longer code).
bool is_token_rejection(const Message& login) noexcept;

struct KiwoomCodecStats {
  std::uint64_t real_frames = 0;     // decode() calls
  std::uint64_t decoded_frames = 0;  // accepted by decode()
  std::uint64_t trades = 0;
  std::uint64_t books = 0;
  std::uint64_t skipped_entries = 0;  // REAL entries of other types
  std::uint64_t messages = 0;         // read() calls
  std::uint64_t pings = 0;
  std::uint64_t system_messages = 0;
  // Rejections of decode() and read(), by reason.
  RejectCounts<KiwoomError, kKiwoomErrorCount> rejected;
};

class KiwoomCodec {
 public:
  // Returns a codec (no options yet: the FIDs are documented).
  static absl::StatusOr<KiwoomCodec> create();

  // Reads any frame and says what it is. A bare text "PING" (which the
  // official client also accepts) is a ping. Counted in stats().
  Message read(std::string_view frame);

  // Decodes a REAL frame, appending one event per 0B / 0D entry to `out`
  // in order; on a rejection appends nothing. Counted in stats().
  DecodeResult<KiwoomError> decode(std::string_view frame,
                                   std::vector<MarketEvent>& out);

  const KiwoomCodecStats& stats() const noexcept { return stats_; }

 private:
  KiwoomCodec() = default;
  Message classify(std::string_view frame);
  KiwoomError decode_real(std::vector<MarketEvent>& out);
  KiwoomError read_values(json::Value values);
  KiwoomError read_trade(std::string_view item, std::vector<MarketEvent>& out);
  KiwoomError read_book(std::string_view item, std::vector<MarketEvent>& out);
  std::string_view fid(int number) const noexcept;

  KiwoomCodecStats stats_;
  json::Document json_;
  // The values of the FIDs the layouts read (0..kMaxFid), of one entry.
  static constexpr int kMaxFid = 127;
  std::string_view values_[kMaxFid + 1];
};

}  // namespace examples::kiwoom
