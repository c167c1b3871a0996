// SPDX-License-Identifier: Apache-2.0
//
// examples/kis/kis_codec.h
//
// The wire codec of Korea Investment & Securities' realtime WebSocket
// (reference/broker-protocols.md §1): pure functions and one stateful
// decoder, no I/O.
//
//   Requests   approval_request_body() / parse_approval_response() for
//              POST /oauth2/Approval; subscription_request() for the
//              register ("1") / unregister ("2") text frame of one
//              (tr_id, tr_key). Subscription keys are "<tr_id>|<tr_key>",
//              e.g. "H0STCNT0|005930".
//   Data       "<enc>|<tr_id>|<count>|<f0>^<f1>^…": KisCodec::decode() reads
//              EVERY record of a multi-record frame (count × fields), trades
//              (H0STCNT0, 46 fields) and 10-level books (H0STASP0, 59
//              fields; live frames carry 62: extra trailing fields are
//              ignored, never required). Encrypted frames (enc = 1) are
//              base64 + AES-256-CBC + PKCS#7 with the key and iv of that
//              tr_id's SUBSCRIBE SUCCESS reply.
//   Control    JSON replies, classified by msg_cd (KisCodec::read_control):
//              OPSP0002 ALREADY IN SUBSCRIBE is a confirmation, OPSP0008 MAX
//              SUBSCRIBE OVER teaches the cap, OPSP8996 appkey in use means
//              back off; PINGPONG is a heartbeat to echo.
//
// Guarantees: any byte sequence is either decoded or rejected with exactly
// one KisError, counted in stats(); a rejected frame appends no event (a
// frame is all or nothing). Never throws, never reads outside the frame.
// decode() of a plain frame allocates nothing once `out` has capacity.
// Secrets (appkey, secret, approval key, AES key and iv) never appear in
// errors or stats.
//
// Unverified wire facts are options (KisCodecOptions): which tr_ids share
// the H0STCNT0 / H0STASP0 layouts, and the CCLD_DVSN aggressor codes.
//
// Thread safety: the free functions are thread-safe; KisCodec is
// thread-compatible (use it on the connection's strand, with KisProtocol).
//
// Example:
//   auto codec = examples::kis::KisCodec::create({}).value();
//   std::vector<examples::MarketEvent> events;
//   auto result = codec.decode("0|H0STCNT0|001|005930^093015^71500^…", events);
//   if (!result.ok()) log(examples::kis::to_string(result.error));
#pragma once

#include <openssl/evp.h>  // EVP_CIPHER_CTX for AES-256-CBC

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/codec_stats.h"
#include "common/json_reader.h"
#include "common/market_events.h"

namespace examples::kis {

inline constexpr std::string_view kTradeTrId = "H0STCNT0";  // KRX trades
inline constexpr std::string_view kBookTrId = "H0STASP0";   // KRX 10-level
inline constexpr std::string_view kPingPongTrId = "PINGPONG";
inline constexpr std::size_t kTradeFields = 46;  // H0STCNT0 record, minimum
inline constexpr std::size_t kBookFields = 59;   // H0STASP0 record, minimum

// --- Requests ---------------------------------------------------------------

// Returns the JSON body of POST {REST}/oauth2/Approval. The secret goes in
// the field "secretkey" (not "appsecret").
std::string approval_request_body(std::string_view appkey,
                                  std::string_view appsecret);

// Returns the approval_key of a /oauth2/Approval response body, or
// kInvalidArgument / kNotFound saying what is wrong (with the broker's
// error_code when it sent one; never the body or a key).
absl::StatusOr<std::string> parse_approval_response(std::string_view body);

enum class TrType : std::uint8_t { subscribe, unsubscribe };  // "1" / "2"

// Returns the text frame that registers or unregisters (tr_id, tr_key):
// {"header":{"approval_key":…,"custtype":"P","tr_type":"1",
//  "content-type":"utf-8"},"body":{"input":{"tr_id":…,"tr_key":…}}}.
std::string subscription_request(std::string_view approval_key,
                                 std::string_view tr_id,
                                 std::string_view tr_key, TrType type,
                                 char custtype = 'P');

// Returns "<tr_id>|<tr_key>".
std::string subscription_key(std::string_view tr_id, std::string_view tr_key);

struct KeyParts {
  std::string_view tr_id;
  std::string_view tr_key;
};
// Returns the parts of "<tr_id>|<tr_key>" (both non-empty), or nullopt.
std::optional<KeyParts> split_subscription_key(std::string_view key) noexcept;

// --- Frames -----------------------------------------------------------------

// Why a frame was rejected. Names (to_string) are stable, for stats.
enum class KisError : std::uint8_t {
  none,
  empty_frame,
  bad_header,         // not "<0|1>|<tr_id>|<count>|<payload>"
  bad_count,          // count not 1-9999 in decimal digits
  unsupported_tr_id,  // a tr_id with no known record layout
  no_cipher,          // encrypted, but no key/iv for this tr_id yet
  bad_base64,
  decrypt_failed,        // wrong length, key or padding
  field_count_mismatch,  // the fields do not split into `count` records
  too_few_fields,        // a record shorter than its layout
  bad_symbol,
  bad_time,
  bad_price,
  bad_quantity,
  bad_json,     // a control frame that is not JSON
  bad_control,  // JSON without header.tr_id (or without body)
};
inline constexpr std::size_t kKisErrorCount = 16;
std::string_view to_string(KisError error) noexcept;

// Returns true if `frame` is a realtime data frame (starts with '0' or '1');
// anything else is a JSON control frame.
inline bool is_data_frame(std::string_view frame) noexcept {
  return !frame.empty() && (frame.front() == '0' || frame.front() == '1');
}

// The header of a data frame; views point into the frame.
struct DataFrame {
  bool encrypted = false;
  std::string_view tr_id;    // 1-16 ASCII letters and digits
  std::size_t count = 0;     // records, >= 1
  std::string_view payload;  // non-empty
};
// Splits a data frame; returns none or why it is not one. Never allocates.
KisError parse_data_frame(std::string_view frame, DataFrame& out) noexcept;

enum class ControlKind : std::uint8_t {
  subscribed,          // OPSP0000 SUBSCRIBE SUCCESS
  unsubscribed,        // OPSP0001 UNSUBSCRIBE SUCCESS
  already_subscribed,  // OPSP0002 ALREADY IN SUBSCRIBE (rt_cd 1, benign)
  not_subscribed,      // OPSP0003 UNSUBSCRIBE ERROR (not found)
  max_subscriptions,   // OPSP0008 MAX SUBSCRIBE OVER
  appkey_in_use,       // OPSP8996 ALREADY IN USE appkey: back off
  invalid_approval,    // OPSP0011 invalid approval: get a new key
  request_rejected,    // OPSP8991/8992/8997/8998/999x: a bad request
  server_error,        // OPSP0007/0009 and unknown errors: retry later
  pingpong,            // heartbeat: echo it
  other,               // rt_cd 0 with an unknown code: nothing to do
};
std::string_view to_string(ControlKind kind) noexcept;

// A control frame as read; views point into the frame (msg1 may hold JSON
// escapes; it is server text, never a secret).
struct Control {
  KisError error = KisError::none;  // none, bad_json or bad_control
  ControlKind kind = ControlKind::other;
  std::string_view tr_id;
  std::string_view tr_key;  // empty for PINGPONG and some errors
  std::string_view rt_cd;
  std::string_view msg_cd;
  std::string_view msg1;
  bool cipher_learned = false;  // output.key/iv stored for tr_id
};

// --- Codec ------------------------------------------------------------------

struct KisCodecOptions {
  // tr_ids decoded with the H0STCNT0 (46-field trade) layout. Add H0NXCNT0
  // or H0UNCNT0 only after checking their layout [UNVERIFIED].
  std::vector<std::string> trade_tr_ids = {std::string(kTradeTrId)};
  // tr_ids decoded with the H0STASP0 (book) layout.
  std::vector<std::string> book_tr_ids = {std::string(kBookTrId)};
  // Read the aggressor from CCLD_DVSN (field 21) as "1" = buy, "5" = sell.
  // The codes are commonly cited but not in any source read [UNVERIFIED],
  // so off by default (Trade::aggressor stays unknown).
  bool aggressor_from_ccld_dvsn = false;

  static KisCodecOptions suggested() { return {}; }
  // Returns OK, or kInvalidArgument naming a tr_id that is empty, not 1-16
  // letters and digits, or listed twice.
  absl::Status validate() const;
};

struct KisCodecStats {
  std::uint64_t data_frames = 0;       // decode() calls
  std::uint64_t decoded_frames = 0;    // accepted by decode()
  std::uint64_t encrypted_frames = 0;  // accepted, enc = 1
  std::uint64_t trades = 0;
  std::uint64_t books = 0;
  std::uint64_t control_frames = 0;  // read_control() calls
  std::uint64_t pingpongs = 0;
  // Rejections of decode() and read_control(), by reason.
  RejectCounts<KisError, kKisErrorCount> rejected;
};

class KisCodec {
 public:
  // Returns a codec, or kInvalidArgument for bad options.
  static absl::StatusOr<KisCodec> create(
      KisCodecOptions options = KisCodecOptions::suggested());

  KisCodec(KisCodec&&) noexcept;
  KisCodec& operator=(KisCodec&&) noexcept;
  ~KisCodec();

  // Decodes one data frame, appending one event per record to `out` in
  // order; on a rejection appends nothing. Counted in stats().
  DecodeResult<KisError> decode(std::string_view frame,
                                std::vector<MarketEvent>& out);

  // Reads one JSON control frame. A SUBSCRIBE SUCCESS reply that carries
  // body.output.key (32 bytes) and .iv (16) stores them for its tr_id, for
  // later encrypted frames. Counted in stats(). Allocates only to store a
  // new tr_id's key (and, once, to grow the JSON token buffer).
  Control read_control(std::string_view frame);

  // Decrypts the base64 payload of an encrypted frame of `tr_id` into
  // `plaintext` (for TRs that decode() has no layout for, such as the
  // H0STCNI0 execution notices). Returns none, no_cipher, bad_base64 or
  // decrypt_failed. Not counted.
  KisError decrypt(std::string_view tr_id, std::string_view base64,
                   std::string& plaintext);

  // Stores the AES key (32 bytes) and iv (16 bytes) for `tr_id`, replacing
  // any earlier ones. Returns kInvalidArgument for other lengths (the
  // message names the lengths only).
  absl::Status set_cipher(std::string_view tr_id, std::string_view key,
                          std::string_view iv);
  bool has_cipher(std::string_view tr_id) const noexcept;
  // Forgets every key (e.g. on a new connection: replies bring new ones).
  void clear_ciphers() noexcept;

  const KisCodecStats& stats() const noexcept { return stats_; }

 private:
  enum class Layout : std::uint8_t { none, trade, book };
  struct Cipher {
    std::string tr_id;
    std::array<unsigned char, 32> key{};
    std::array<unsigned char, 16> iv{};
  };
  struct CipherContextDeleter {
    void operator()(EVP_CIPHER_CTX* ctx) const noexcept;
  };

  explicit KisCodec(KisCodecOptions options);
  Layout layout_of(std::string_view tr_id) const noexcept;
  KisError decode_frame(std::string_view frame, std::vector<MarketEvent>& out);
  KisError decode_records(Layout layout, std::size_t count,
                          std::string_view payload,
                          std::vector<MarketEvent>& out) const;
  Control classify_control(std::string_view frame);
  const Cipher* find_cipher(std::string_view tr_id) const noexcept;

  KisCodecOptions options_;
  KisCodecStats stats_;
  json::Document json_;
  std::vector<Cipher> ciphers_;
  std::unique_ptr<EVP_CIPHER_CTX, CipherContextDeleter> cipher_context_;
  std::string ciphertext_;  // reused buffers: no allocation once warm
  std::string plaintext_;
};

}  // namespace examples::kis
