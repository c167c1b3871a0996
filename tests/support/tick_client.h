// SPDX-License-Identifier: Apache-2.0
//
// tests/support/tick_client.h
//
// What the "collector in miniature" tests (escalation_ws_test,
// status_server_test) share: a WsClient reading FaultyWsServer's line feed
// into a Dispatcher, and its shutdown.
//
//   Tick, TickEvent       a data frame of key "A" (else "B") with its receive
//                         time; the dispatcher's event (a tick or a gap).
//   tick_client_options() WsClientOptions for `url` with the tests' quick
//                         reconnect settings (stable after 100 ms, backoff
//                         20 ms × 1.6 up to 200 ms).
//   make_tick_client()    the client on `ioc`: LineProtocol, credentials
//                         `secret` that never expire, a Tick per data frame
//                         (try_push: dropped when the queue is full) and
//                         every gap pushed to `producer`.
//   stop_tick_client()    stops the client (waiting up to `wait`), then the
//                         io_context, and joins the thread running it.
//
// Thread safety: test code; `producer` is used from the io_context's thread
// and must outlive the client.
//
// Example:
//   client_ = make_tick_client(ioc_, tick_client_options(server_->url()),
//                              "s", *producer_);
//   runner_ = std::thread([this] { ioc_.run(); });
//   ...
//   stop_tick_client(client_.get(), ioc_, runner_, kWait);
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <variant>

#include "feedkit/clock.h"
#include "feedkit/dispatcher.h"
#include "feedkit/testing/line_protocol.h"
#include "feedkit/ws_client.h"

namespace feedkit::testing {

struct Tick {
  bool is_a = false;  // key "A", else "B"
  SteadyTime recv_time{};
};
using TickEvent = std::variant<Tick, GapEvent>;

inline WsClientOptions tick_client_options(std::string url) {
  using std::chrono::milliseconds;
  WsClientOptions o;
  o.url = std::move(url);
  o.stable_after = milliseconds(100);
  o.backoff = {
      .initial = milliseconds(20), .multiplier = 1.6, .max = milliseconds(200)};
  return o;
}

inline std::shared_ptr<WsClient> make_tick_client(
    boost::asio::io_context& ioc, const WsClientOptions& options,
    std::string secret, Dispatcher<TickEvent>::Producer& producer) {
  WsClientCallbacks cb;
  cb.on_data = [&producer](std::string_view frame, SteadyTime t,
                           std::uint64_t) {
    if (auto d = testing::parse_line_data(frame)) {
      (void)producer.try_push(Tick{d->key == "A", t});
    }
  };
  cb.on_gap = [&producer](const GapEvent& gap) { producer.push_control(gap); };
  return WsClient::create(
             ioc, options, std::make_unique<testing::LineProtocol>(false),
             [secret = std::move(secret)](bool, auto done) {
               done(Credentials{secret, SteadyTime::max()});
             },
             cb)
      .value();
}

inline void stop_tick_client(WsClient* client, boost::asio::io_context& ioc,
                             std::thread& runner, Duration wait) {
  if (client != nullptr) {
    std::promise<void> stopped;
    client->stop([&] { stopped.set_value(); });
    stopped.get_future().wait_for(wait);
  }
  ioc.stop();
  if (runner.joinable()) runner.join();
}

}  // namespace feedkit::testing
