// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/kiwoom_dialect.h
//
// KiwoomDialect makes a FaultyWsServer speak Kiwoom's REST API realtime
// WebSocket (reference/broker-protocols.md §2), for feedkit-sim:
//
//   reads    {"trnm":"LOGIN","token"} → login (LOGIN first: a REG before an
//            accepted LOGIN is refused); {"trnm":"REG"|"REMOVE","grp_no",
//            "data":[{"item":[…],"type":[…]}]} → subscribe / unsubscribe of
//            every "<type>|<item>" (the cross product of each entry);
//            {"trnm":"PING"} echoed → heartbeat.
//   replies  {"trnm":"LOGIN","return_code":0,"return_msg":""}, or 8005 with
//            "[CODE=8005, …]" for a token not accepted; one REG / REMOVE
//            reply per request, return_code 0, or 1 with the first failure
//            ("등록 종목수 초과" over the cap); {"trnm":"PING"};
//            SYSTEM R10001 to a session another login took over; SYSTEM
//            R10002 to one that stopped echoing PINGs (when enforced); SYSTEM
//            with code 8005 before closing a session whose token was revoked
//            (Kiwoom's frame for that is not documented [UNVERIFIED]).
//            Kiwoom has no ALREADY answer: a REG for a key held is OK.
//   data     {"trnm":"REAL","data":[{"type":"0B","name":"주식체결",
//            "item":…,"values":{"20":HHMMSS,"10":±price,"15":±volume v(seq),
//            "13":cumulative volume C(seq),…}},…]} with several entries per
//            frame when the server asks; 0D books (FIDs 41-50/51-60 prices,
//            61-80 quantities, 121/125 totals, 13 the cumulative volume of
//            the symbol's last trade sent), one entry per frame.
//
// Thread safety: as ServerDialect (the server's thread only).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "feedkit/testing/server_dialect.h"
#include "sim/market.h"

namespace examples::sim {

inline constexpr std::string_view kKiwoomTradeType = "0B";
inline constexpr std::string_view kKiwoomBookType = "0D";

class KiwoomDialect final : public feedkit::testing::ServerDialect {
 public:
  explicit KiwoomDialect(MarketClock clock) : clock_(std::move(clock)) {}

  feedkit::testing::ClientRequest read(std::string_view frame) override;
  bool requires_login() const override { return true; }

  std::string login_ok() override;
  std::string login_failed() override;
  std::string login_in_use() override;
  std::string kicked() override;
  std::string token_expired() override;
  std::string ping(std::uint64_t n) override;
  std::string missed_pings() override;
  std::string notice(std::string_view text) override;

  std::vector<std::string> subscribe_replies(
      const feedkit::testing::ClientRequest& request,
      std::span<const feedkit::testing::KeyOutcome> outcomes) override;
  std::vector<std::string> unsubscribe_replies(
      const feedkit::testing::ClientRequest& request,
      const std::vector<bool>& held) override;
  std::string subscribed(std::string_view key) override;
  std::string already(std::string_view key) override;
  std::string max_subscriptions(std::string_view key) override;
  std::string rejected(std::string_view key, std::string_view reason) override;
  std::string auth_failed(std::string_view key) override;
  std::string in_use(std::string_view key) override;
  std::string unsubscribed(std::string_view key, bool was_held) override;

  std::size_t max_records_per_frame() const override { return 10; }
  void append_data(std::string& out, std::string_view key,
                   std::uint64_t first_seq, std::size_t records,
                   std::int64_t sent_ns) override;
  std::string malformed(std::size_t i) override;

 private:
  void append_trade(std::string& out, std::string_view item, std::uint64_t seq,
                    std::string_view time);
  void append_book(std::string& out, std::string_view item, std::uint64_t seq,
                   std::string_view time);

  MarketClock clock_;
  // Per item: the last trade seq sent (for the books' FID 13).
  std::map<std::string, std::uint64_t, std::less<>> last_trade_;
};

}  // namespace examples::sim
