// tests/support/bridge_sources.h
//
// add_every_source(bridge, connection): registers one source of every kind a
// PrometheusBridge exports (connection, dispatcher, feed health, per-symbol
// health, breaker, escalation), so a test sees every metric family. The
// connection's stats are read from `connection` at each collect; set its
// optional fields (learned_cap, breaker rates) to see those families too.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "feedkit/prometheus_bridge.h"

namespace feedkit::testing {

inline void add_every_source(PrometheusBridge& bridge,
                             const ConnectionStats& connection) {
  EXPECT_TRUE(
      bridge.add_connection("c", [&connection] { return connection; }).ok());
  EXPECT_TRUE(
      bridge.add_dispatcher("d", [] { return DispatcherStats{}; }).ok());
  EXPECT_TRUE(
      bridge.add_feed_health("f", [] { return FeedHealthStats{}; }).ok());
  EXPECT_TRUE(
      bridge
          .add_symbol_health(
              "f",
              [] {
                return std::vector<SymbolHealth>{{"X", HealthState::fresh, {}}};
              })
          .ok());
  EXPECT_TRUE(
      bridge.add_breaker("b", [] { return CircuitBreakerStats{}; }).ok());
  EXPECT_TRUE(
      bridge.add_escalation("c", [] { return EscalationStats{}; }).ok());
}

}  // namespace feedkit::testing
