// SPDX-License-Identifier: Apache-2.0
#include "kiwoom/kiwoom_protocol.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace examples::kiwoom {
namespace {

// "<what> <code> <text>", bounded and printable: server text, never a secret.
std::string describe(std::string_view what, std::string_view code,
                     std::string_view text) {
  std::string reason(what);
  reason += ' ';
  append_printable(reason, code, 16);
  reason += ' ';
  append_printable(reason, text);
  return reason;
}

}  // namespace

absl::Status KiwoomProtocolOptions::validate() const {
  if (absl::Status s = registration.validate(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("KiwoomProtocolOptions::registration: ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KiwoomProtocol>> KiwoomProtocol::create(
    std::shared_ptr<KiwoomCodec> codec, KiwoomProtocolOptions options) {
  if (codec == nullptr) {
    return absl::InvalidArgumentError("KiwoomProtocol::create: codec is null");
  }
  if (absl::Status s = options.validate(); !s.ok()) return s;
  return std::unique_ptr<KiwoomProtocol>(
      new KiwoomProtocol(std::move(codec), std::move(options)));
}

std::vector<std::string> KiwoomProtocol::login_frames(
    const feedkit::Credentials& credentials) {
  awaiting_.clear();
  return {login_frame(credentials.secret)};
}

std::string KiwoomProtocol::request(Registration kind, std::string_view key) {
  const std::optional<KeyParts> parts = split_subscription_key(key);
  const KeyParts sent = parts ? *parts : KeyParts{{}, key};
  if (awaiting_.size() >= kMaxAwaitingReplies) awaiting_.pop_front();
  awaiting_.push_back({kind, std::string(key)});
  return registration_frame(kind, {sent.item}, {sent.type},
                            options_.registration);
}

std::string KiwoomProtocol::subscribe_frame(std::string_view key,
                                            const feedkit::Credentials&) {
  return request(Registration::reg, key);
}

std::string KiwoomProtocol::unsubscribe_frame(std::string_view key,
                                              const feedkit::Credentials&) {
  return request(Registration::remove, key);
}

std::string KiwoomProtocol::take_awaiting(Registration kind) {
  const auto it =
      std::find_if(awaiting_.begin(), awaiting_.end(),
                   [kind](const Awaiting& a) { return a.kind == kind; });
  if (it == awaiting_.end()) return {};
  std::string key = std::move(it->key);
  awaiting_.erase(it);
  return key;
}

feedkit::Classified KiwoomProtocol::classify(std::string_view frame) {
  using feedkit::FrameKind;
  feedkit::Classified out;
  const Message message = codec_->read(frame);
  if (message.error != KiwoomError::none) {
    out.kind = FrameKind::malformed;
    out.reason = std::string(to_string(message.error));
    return out;
  }
  switch (message.kind) {
    case MessageKind::real:
      out.kind = FrameKind::data;
      break;
    case MessageKind::ping:
      out.kind = FrameKind::heartbeat;
      out.reply = std::string(frame);  // "send back exactly what was received"
      break;
    case MessageKind::login:
      if (message.return_code == 0) {
        out.kind = FrameKind::login_ok;
      } else {
        out.kind = is_token_rejection(message) ? FrameKind::auth_rejected
                                               : FrameKind::busy;
        out.reason = describe("LOGIN", std::to_string(message.return_code),
                              message.return_msg);
      }
      break;
    case MessageKind::reg:
      out.key = take_awaiting(Registration::reg);
      if (out.key.empty()) {
        out.kind = FrameKind::notice;
        out.reason = "REG reply without a request awaiting one";
      } else if (message.return_code == 0) {
        out.kind = FrameKind::subscribe_ack;
      } else {
        const bool cap = !options_.cap_marker.empty() &&
                         message.return_msg.find(options_.cap_marker) !=
                             std::string_view::npos;
        out.kind =
            cap ? FrameKind::max_subscriptions : FrameKind::subscribe_reject;
        out.reason = describe("REG", std::to_string(message.return_code),
                              message.return_msg);
      }
      break;
    case MessageKind::remove:
      out.key = take_awaiting(Registration::remove);
      if (out.key.empty()) {
        out.kind = FrameKind::notice;
        out.reason = "REMOVE reply without a request awaiting one";
      } else {
        // Failed or not: the key is not registered any more.
        out.kind = FrameKind::unsubscribe_ack;
      }
      break;
    case MessageKind::system:
      out.kind = message.code == "R10001" ? FrameKind::busy : FrameKind::notice;
      out.reason = describe("SYSTEM", message.code, message.message);
      break;
    case MessageKind::other:
      out.kind = FrameKind::ignore;
      break;
  }
  return out;
}

}  // namespace examples::kiwoom
