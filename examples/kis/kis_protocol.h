// SPDX-License-Identifier: Apache-2.0
//
// examples/kis/kis_protocol.h
//
// KisProtocol is the feedkit::Protocol of the KIS realtime WebSocket: what
// feedkit::WsClient sends and how it reads each frame, on top of KisCodec.
//
//   login        none: KIS has no login frame; the approval key
//                (Credentials::secret) goes into every subscribe frame.
//   keys         "<tr_id>|<tr_key>", e.g. "H0STCNT0|005930"; one frame per
//                key (tr_type "1" to register, "2" to unregister).
//   classify     data frames ('0'/'1' first) → data, not decoded here (the
//                collector decodes them in on_data with the same KisCodec);
//                JSON replies by msg_cd:
//                  OPSP0000                → subscribe_ack
//                  OPSP0001, OPSP0003      → unsubscribe_ack
//                  OPSP0002                → already_subscribed
//                  OPSP0008                → max_subscriptions
//                  OPSP8996                → busy (back off)
//                  OPSP0011                → auth_rejected
//                  bad request codes       → subscribe_reject
//                  OPSP0007/0009, unknown  → notice (retried on timeout)
//                  PINGPONG                → heartbeat: the exact bytes
//                                            echoed as text, or as a
//                                            WebSocket pong (options)
//                  not JSON / no header.tr_id → malformed
//
// The codec is shared (std::shared_ptr) because the collector decodes data
// frames with it and the AES keys of encrypted TRs arrive in subscribe
// replies that classify() reads. A new connection (login_frames()) forgets
// the previous connection's keys.
//
// Thread safety: thread-compatible; WsClient calls it on its strand, and
// the collector must use the shared codec on that same strand.
//
// Example:
//   auto codec = std::make_shared<examples::kis::KisCodec>(
//       examples::kis::KisCodec::create().value());
//   auto protocol = examples::kis::KisProtocol::create(codec).value();
//   auto client = feedkit::WsClient::create(ioc, options, std::move(protocol),
//                                           approval_keys, callbacks);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/ws_client.h"
#include "kis/kis_codec.h"

namespace examples::kis {

// How to answer PINGPONG. No source says which the server requires (§1.10).
enum class PingReply : std::uint8_t {
  text_echo,   // a text frame with the exact bytes received (python-kis)
  pong_frame,  // a WebSocket pong carrying them (current official sample)
};

struct KisProtocolOptions {
  char custtype = 'P';  // 'P' individual, 'B' corporate
  PingReply ping_reply = PingReply::text_echo;
  // Whether a reconnect unregisters every key before registering it again.
  // KIS may still hold the old session's registrations (the incident's
  // ALREADY IN SUBSCRIBE), so on by default.
  bool broker_keeps_subscriptions = true;

  static KisProtocolOptions suggested() { return {}; }
  // Returns OK, or kInvalidArgument for a custtype other than 'P' or 'B'.
  absl::Status validate() const;
};

class KisProtocol final : public feedkit::Protocol {
 public:
  // Returns a protocol over `codec` (non-null), or kInvalidArgument.
  static absl::StatusOr<std::unique_ptr<KisProtocol>> create(
      std::shared_ptr<KisCodec> codec,
      KisProtocolOptions options = KisProtocolOptions::suggested());

  bool broker_keeps_subscriptions() const override {
    return options_.broker_keeps_subscriptions;
  }
  // Returns no frame (KIS has no login), after forgetting the AES keys of
  // the previous connection.
  std::vector<std::string> login_frames(
      const feedkit::Credentials& credentials) override;
  // Returns the register frame of key "<tr_id>|<tr_key>" with the approval
  // key (a key without '|' is sent with tr_id = key and an empty tr_key,
  // which the broker rejects).
  std::string subscribe_frame(std::string_view key,
                              const feedkit::Credentials& credentials) override;
  std::string unsubscribe_frame(
      std::string_view key, const feedkit::Credentials& credentials) override;
  feedkit::Classified classify(std::string_view frame) override;

  KisCodec& codec() noexcept { return *codec_; }

 private:
  KisProtocol(std::shared_ptr<KisCodec> codec, KisProtocolOptions options)
      : codec_(std::move(codec)), options_(options) {}
  std::string request(std::string_view key, TrType type,
                      const feedkit::Credentials& credentials) const;

  std::shared_ptr<KisCodec> codec_;
  KisProtocolOptions options_;
};

}  // namespace examples::kis
