// SPDX-License-Identifier: Apache-2.0
#include "kis/kis_protocol.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace examples::kis {
namespace {

// "<msg_cd> <msg1>", bounded and printable: server text, never a secret.
std::string describe(const Control& control) {
  std::string reason;
  append_printable(reason, control.msg_cd, 16);
  reason += ' ';
  append_printable(reason, control.msg1);
  return reason;
}

}  // namespace

absl::Status KisProtocolOptions::validate() const {
  if (custtype != 'P' && custtype != 'B') {
    return absl::InvalidArgumentError(
        absl::StrCat("KisProtocolOptions::custtype must be 'P' or 'B', got "
                     "character code ",
                     static_cast<int>(custtype)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KisProtocol>> KisProtocol::create(
    std::shared_ptr<KisCodec> codec, KisProtocolOptions options) {
  if (codec == nullptr) {
    return absl::InvalidArgumentError("KisProtocol::create: codec is null");
  }
  if (absl::Status s = options.validate(); !s.ok()) return s;
  return std::unique_ptr<KisProtocol>(
      new KisProtocol(std::move(codec), options));
}

std::vector<std::string> KisProtocol::login_frames(
    const feedkit::Credentials&) {
  codec_->clear_ciphers();
  return {};
}

std::string KisProtocol::request(
    std::string_view key, TrType type,
    const feedkit::Credentials& credentials) const {
  const std::optional<KeyParts> parts = split_subscription_key(key);
  const KeyParts sent = parts ? *parts : KeyParts{key, {}};
  return subscription_request(credentials.secret, sent.tr_id, sent.tr_key, type,
                              options_.custtype);
}

std::string KisProtocol::subscribe_frame(
    std::string_view key, const feedkit::Credentials& credentials) {
  return request(key, TrType::subscribe, credentials);
}

std::string KisProtocol::unsubscribe_frame(
    std::string_view key, const feedkit::Credentials& credentials) {
  return request(key, TrType::unsubscribe, credentials);
}

feedkit::Classified KisProtocol::classify(std::string_view frame) {
  using feedkit::FrameKind;
  feedkit::Classified out;
  if (is_data_frame(frame)) {
    out.kind = FrameKind::data;
    return out;
  }
  const Control control = codec_->read_control(frame);
  if (control.error != KisError::none) {
    out.kind = FrameKind::malformed;
    out.reason = std::string(to_string(control.error));
    return out;
  }
  if (!control.tr_id.empty() && !control.tr_key.empty()) {
    out.key = subscription_key(control.tr_id, control.tr_key);
  }
  switch (control.kind) {
    case ControlKind::pingpong:
      out.kind = FrameKind::heartbeat;
      out.reply = std::string(frame);
      out.reply_as_pong = options_.ping_reply == PingReply::pong_frame;
      break;
    case ControlKind::subscribed:
      out.kind = FrameKind::subscribe_ack;
      break;
    case ControlKind::unsubscribed:
    case ControlKind::not_subscribed:  // nothing registered: same outcome
      out.kind = FrameKind::unsubscribe_ack;
      break;
    case ControlKind::already_subscribed:
      out.kind = FrameKind::already_subscribed;
      break;
    case ControlKind::max_subscriptions:
      out.kind = FrameKind::max_subscriptions;
      break;
    case ControlKind::appkey_in_use:
      out.kind = FrameKind::busy;
      out.reason = describe(control);
      break;
    case ControlKind::invalid_approval:
      out.kind = FrameKind::auth_rejected;
      out.reason = describe(control);
      break;
    case ControlKind::request_rejected:
      out.kind = FrameKind::subscribe_reject;
      out.reason = describe(control);
      break;
    case ControlKind::server_error:
      out.kind = FrameKind::notice;
      out.reason = describe(control);
      break;
    case ControlKind::other:
      out.kind = FrameKind::ignore;
      break;
  }
  return out;
}

}  // namespace examples::kis
