// SPDX-License-Identifier: Apache-2.0
//
// examples/kiwoom/kiwoom_protocol.h
//
// KiwoomProtocol is the feedkit::Protocol of Kiwoom's realtime WebSocket:
// what feedkit::WsClient sends and how it reads each frame, on top of
// KiwoomCodec.
//
//   login     {"trnm":"LOGIN","token":<Credentials::secret>}; the LOGIN
//             reply with return_code 0 → login_ok; 8005/8031/8103 (or
//             "CODE=8005|8031|8103" in return_msg) → auth_rejected (a fresh
//             token); any other code → busy (back off).
//   keys      "<type>|<item>", e.g. "0B|005930"; one REG (or REMOVE) frame
//             per key, with the options' grp_no and refresh.
//   replies   REG/REMOVE replies do not name their key: they are matched to
//             this connection's requests in the order sent (first REG reply
//             ↔ oldest REG awaiting one). REG 0 → subscribe_ack; a non-zero
//             code whose return_msg holds `cap_marker` → max_subscriptions;
//             other non-zero → subscribe_reject; REMOVE → unsubscribe_ack.
//   classify  REAL → data (decoded by the collector with the same codec);
//             PING → heartbeat, the frame echoed exactly; SYSTEM R10001 (a
//             newer session with the same app key took over) → busy, so the
//             client backs off instead of kicking it back; other SYSTEM →
//             notice, never echoed; not JSON / no trnm → malformed.
//
// Thread safety: thread-compatible; WsClient calls it on its strand.
//
// Example:
//   auto codec = std::make_shared<examples::kiwoom::KiwoomCodec>(
//       examples::kiwoom::KiwoomCodec::create().value());
//   auto protocol = examples::kiwoom::KiwoomProtocol::create(codec).value();
//   client->want(examples::kiwoom::subscription_key("0B", "005930"));
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/ws_client.h"
#include "kiwoom/kiwoom_codec.h"

namespace examples::kiwoom {

struct KiwoomProtocolOptions {
  RegistrationOptions registration = RegistrationOptions::suggested();
  // Whether a reconnect REMOVEs every key before registering it again. The
  // reference says nothing survives a reconnect; DESIGN.md plays safe.
  bool broker_keeps_subscriptions = true;
  // A failed REG reply whose return_msg contains this means the
  // registration cap is reached. No official cap or text is known: a
  // third-party fake sends "등록 종목수 초과" ("too many items registered")
  // [UNVERIFIED]. Empty: never.
  std::string cap_marker = "초과";

  static KiwoomProtocolOptions suggested() { return {}; }
  // Returns OK or kInvalidArgument naming the bad field.
  absl::Status validate() const;
};

class KiwoomProtocol final : public feedkit::Protocol {
 public:
  // Requests awaiting a reply, per connection; older ones are forgotten
  // beyond this (their replies then count as unexpected).
  static constexpr std::size_t kMaxAwaitingReplies = 4096;

  // Returns a protocol over `codec` (non-null), or kInvalidArgument.
  static absl::StatusOr<std::unique_ptr<KiwoomProtocol>> create(
      std::shared_ptr<KiwoomCodec> codec,
      KiwoomProtocolOptions options = KiwoomProtocolOptions::suggested());

  bool broker_keeps_subscriptions() const override {
    return options_.broker_keeps_subscriptions;
  }
  // Returns the LOGIN frame; forgets the previous connection's requests.
  std::vector<std::string> login_frames(
      const feedkit::Credentials& credentials) override;
  // Returns the REG frame of key "<type>|<item>" (a key without '|' is sent
  // as an item with an empty type, which the broker rejects).
  std::string subscribe_frame(std::string_view key,
                              const feedkit::Credentials& credentials) override;
  std::string unsubscribe_frame(
      std::string_view key, const feedkit::Credentials& credentials) override;
  feedkit::Classified classify(std::string_view frame) override;

  KiwoomCodec& codec() noexcept { return *codec_; }

 private:
  struct Awaiting {
    Registration kind;
    std::string key;
  };
  KiwoomProtocol(std::shared_ptr<KiwoomCodec> codec,
                 KiwoomProtocolOptions options)
      : codec_(std::move(codec)), options_(std::move(options)) {}
  std::string request(Registration kind, std::string_view key);
  // Removes and returns the key of the oldest request of `kind`, or "".
  std::string take_awaiting(Registration kind);

  std::shared_ptr<KiwoomCodec> codec_;
  KiwoomProtocolOptions options_;
  std::deque<Awaiting> awaiting_;
};

}  // namespace examples::kiwoom
