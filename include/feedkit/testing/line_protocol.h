// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/line_protocol.h
//
// LineProtocol is the feedkit::Protocol of FaultyWsServer: one text frame is
// one line, a verb and its fields separated by single spaces.
//
//   client → server: "LOGIN <secret>", "SUB <key>", "UNSUB <key>", "PONG <n>"
//   server → client: "LOGIN_OK"            → login_ok
//                    "AUTH_FAIL"           → auth_rejected
//                    "ACK <key>"           → subscribe_ack
//                    "ALREADY <key>"       → already_subscribed
//                    "MAXSUB <key>"        → max_subscriptions
//                    "REJECT <key> <why>"  → subscribe_reject (reason = why)
//                    "UNACK <key>"         → unsubscribe_ack
//                    "PING <n>"            → heartbeat, reply "PONG <n>"
//                    "BUSY"                → busy
//                    "NOTICE <text>"       → notice (reason = text)
//                    "DATA <key> <seq> <payload>" with a decimal seq → data
//                    anything else         → malformed
//
// parse_line_data() splits a DATA frame for consumers and benchmarks without
// copying; parse_sent_time() reads the "t=<ns>" steady send time that
// FaultyWsServer puts in every DATA payload (same machine, same steady clock,
// so now − sent is the one-way latency).
//
// Nothing here reads a clock, starts a thread or blocks. classify() allocates
// only for the key, reason and reply it returns; the parse functions never
// allocate. The secret appears only in the LOGIN frame, never in a reason.
//
// Thread safety: LineProtocol is stateless and thread-safe; the free
// functions are thread-safe.
//
// Example:
//   auto protocol = std::make_unique<feedkit::testing::LineProtocol>();
//   protocol->classify("ACK 005930").kind;            //
//   FrameKind::subscribe_ack auto d = feedkit::testing::parse_line_data(frame);
//   // DATA A 17 t=123 if (d) latency = now -
//   *feedkit::testing::parse_sent_time(d->payload);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "feedkit/clock.h"
#include "feedkit/ws_client.h"

namespace feedkit::testing {

// One "DATA <key> <seq> <payload>" frame; the views point into the frame.
struct LineData {
  std::string_view key;      // non-empty, no spaces
  std::uint64_t seq = 0;     // decimal, fits in 64 bits
  std::string_view payload;  // the rest of the frame (may be empty)
};

// Returns the fields of a DATA frame, or nullopt if `frame` is not a
// well-formed DATA frame. Thread-safe. Never allocates.
std::optional<LineData> parse_line_data(std::string_view frame) noexcept;

// Returns the steady send time written as "t=<ns>" (nanoseconds since the
// steady clock's epoch) at the start of `payload` or after a space in it, or
// nullopt if there is none. Thread-safe. Never allocates.
std::optional<SteadyTime> parse_sent_time(std::string_view payload) noexcept;

class LineProtocol final : public Protocol {
 public:
  // `broker_keeps_subscriptions`: what broker_keeps_subscriptions() returns;
  // match FaultyWsServer::set_keeps_subscriptions().
  explicit LineProtocol(bool broker_keeps_subscriptions = true)
      : keeps_(broker_keeps_subscriptions) {}

  bool broker_keeps_subscriptions() const override { return keeps_; }
  // Returns {"LOGIN <secret>"}.
  std::vector<std::string> login_frames(
      const Credentials& credentials) override;
  // Returns "SUB <key>".
  std::string subscribe_frame(std::string_view key,
                              const Credentials& credentials) override;
  // Returns "UNSUB <key>".
  std::string unsubscribe_frame(std::string_view key,
                                const Credentials& credentials) override;
  // Returns what `frame` is (see the table at the top of this file).
  Classified classify(std::string_view frame) override;

 private:
  bool keeps_;
};

}  // namespace feedkit::testing
