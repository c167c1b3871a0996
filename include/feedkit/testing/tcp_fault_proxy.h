// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/tcp_fault_proxy.h
//
// TcpFaultProxy is a loopback TCP proxy a test puts between a client and a
// server (a mosquitto, a FaultyWsServer, a WsTcpBridge) to break the link the
// way networks do, on real sockets. Each accepted connection (a "link") gets
// a connection of its own to the target; links are numbered from 0 in the
// order they were accepted.
//
//   pass    bytes flow both ways as they arrive
//   delay   each chunk is forwarded `delay` after it was read (latency; the
//           order is kept and throughput is not limited)
//   stall   nothing is read or written on either side, and the sockets stay
//           open: a silent network. Bytes the peers send wait in the kernel
//           (and in the proxy, at most one chunk per direction) until their
//           windows fill and their writes block; nothing is discarded, so a
//           later pass delivers everything, in order, like a healed
//           partition. Bytes the proxy was already writing when the stall
//           was set may still arrive.
//   cut     both sides get a FIN (their reads see EOF); data not yet
//           forwarded is discarded, and what the peers still send is read
//           and dropped (for up to 2 s) so that the FIN does not turn into
//           a RST
//   reset   both sides get a TCP RST (SO_LINGER 0): ECONNRESET
//   refuse  the listening socket is closed: new connections get
//           ECONNREFUSED until refusing stops (same port again)
//
// A link whose target refuses (server down) is reset at once: the client
// sees its connection accepted, then ECONNRESET. A peer's FIN is passed on
// once everything it sent was forwarded (half-close), a peer's RST as a RST.
//
// It runs on its own thread and io_context, started by start() and joined by
// the destructor.
//
// Thread safety: thread-safe. Every mode change and action has taken effect
// on the proxy thread when it returns. Counters are updated on the proxy
// thread as bytes are written: use wait_for().
//
// Example:
//   auto proxy = feedkit::testing::TcpFaultProxy::start(
//       {.target_port = broker->port()}).value();
//   client.connect(proxy->url());              // tcp://127.0.0.1:PROXY_PORT
//   proxy->set_mode(LinkMode::stall);           // keepalive must notice
//   ASSERT_TRUE(proxy->wait_for([&] { return client_lost; }, 10s));
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "feedkit/clock.h"

namespace feedkit::testing {

struct TcpFaultProxyOptions {
  std::string target_host = "127.0.0.1";  // an IP address
  std::uint16_t target_port = 0;          // must be set

  // Returns OK, or InvalidArgument naming the bad field and value.
  absl::Status validate() const;
};

enum class LinkMode {
  pass,   // forward as bytes arrive
  delay,  // forward each chunk `delay` after it was read
  stall,  // forward nothing, read nothing, keep the sockets open
};

class TcpFaultProxy {
 public:
  // Starts listening on 127.0.0.1 at a free port. Returns InvalidArgument for
  // bad options, Unavailable if the socket cannot be set up.
  static absl::StatusOr<std::unique_ptr<TcpFaultProxy>> start(
      TcpFaultProxyOptions options);

  // Closes every link (both sides) and joins the proxy thread; returns
  // promptly whatever the peers do.
  ~TcpFaultProxy();
  TcpFaultProxy(const TcpFaultProxy&) = delete;
  TcpFaultProxy& operator=(const TcpFaultProxy&) = delete;

  std::uint16_t port() const;  // the same while the proxy lives
  std::string url() const;     // "tcp://127.0.0.1:PORT"

  // --- Modes ----------------------------------------------------------------
  // Sets the mode of every open link and of links accepted later. `delay`
  // is used by LinkMode::delay (and must be > 0 for it).
  void set_mode(LinkMode mode, Duration delay = Duration::zero());
  // Sets the mode of link `link` only (no effect if it has ended).
  void set_link_mode(std::size_t link, LinkMode mode,
                     Duration delay = Duration::zero());
  // Sets the mode of links accepted later only.
  void set_new_link_mode(LinkMode mode, Duration delay = Duration::zero());
  // true: closes the listening socket (new connections are refused);
  // false: listens on the same port again. Open links are not affected.
  // Returns Unavailable if the port cannot be bound again.
  absl::Status set_refusing(bool refuse);

  // --- Actions --------------------------------------------------------------
  void cut_all();                // FIN to both sides of every open link
  void cut(std::size_t link);    // FIN to both sides of one link
  void reset_all();              // RST to both sides of every open link
  void reset(std::size_t link);  // RST to both sides of one link

  // --- Observation ----------------------------------------------------------
  std::size_t connections_accepted() const;  // links, ended ones included
  std::size_t open_links() const;       // accepted and not yet cut/reset/closed
  std::size_t target_failures() const;  // links reset: target refused
  std::uint64_t bytes_to_target() const;  // written to targets, all links
  std::uint64_t bytes_to_client() const;  // written to clients, all links
  // Blocks until `condition` holds (re-checked whenever the proxy's state
  // changes, and at least every 10 ms) or `timeout` passes; returns whether
  // it held.
  bool wait_for(const std::function<bool()>& condition, Duration timeout) const;

  class Impl;

 private:
  explicit TcpFaultProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedkit::testing
