// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/kis_dialect.h
//
// KisDialect makes a FaultyWsServer speak the KIS realtime WebSocket
// (reference/broker-protocols.md §1), for feedkit-sim:
//
//   reads    {"header":{"approval_key","custtype","tr_type":"1"|"2",…},
//             "body":{"input":{"tr_id","tr_key"}}} → subscribe / unsubscribe
//            of key "<tr_id>|<tr_key>" carrying the approval key as its
//            secret (KIS has no login frame); {"header":{"tr_id":"PINGPONG"…}}
//            echoed as text → heartbeat (a pong frame counts too). Bad
//            requests are answered with KIS's JSON PARSING ERROR / SUBSCRIBE
//            ERROR codes (OPSP999x order [UNVERIFIED], OPSP8997/8998,
//            OPSP8991/8992).
//   replies  {"header":{"tr_id","tr_key","encrypt":"N"},"body":{"rt_cd",
//            "msg_cd","msg1"[,"output":{"iv","key"}]}} with OPSP0000
//            SUBSCRIBE SUCCESS, OPSP0002 ALREADY IN SUBSCRIBE, OPSP0008 MAX
//            SUBSCRIBE OVER, OPSP0011 invalid approval, OPSP8996 ALREADY IN
//            USE appkey, OPSP0001 UNSUBSCRIBE SUCCESS / OPSP0003 UNSUBSCRIBE
//            ERROR(not found!); PINGPONG {"header":{"tr_id":"PINGPONG",
//            "datetime":"YYYYMMDDHHMMSS"}}. No login, kick, notice or
//            token-expiry frame: an expired key's session is just closed.
//   data     H0STCNT0 "0|H0STCNT0|<NNN>|<46 fields>^…" (several records per
//            frame when the server asks: field 12 = volume v(seq), 13 =
//            cumulative volume C(seq), 0 = symbol, 1 = HHMMSS, 2 = price);
//            H0STASP0 books, 62 fields (59 + KMID_*), one record per frame,
//            whose ACML_VOL is the cumulative volume of the symbol's last
//            trade sent.
//
// Thread safety: as ServerDialect (the server's thread only).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "feedkit/testing/server_dialect.h"
#include "sim/market.h"

namespace examples::sim {

inline constexpr std::string_view kKisTradeTrId = "H0STCNT0";
inline constexpr std::string_view kKisBookTrId = "H0STASP0";

class KisDialect final : public feedkit::testing::ServerDialect {
 public:
  explicit KisDialect(MarketClock clock) : clock_(std::move(clock)) {}

  feedkit::testing::ClientRequest read(std::string_view frame) override;

  std::string login_ok() override { return {}; }
  std::string login_failed() override { return {}; }
  std::string login_in_use() override { return {}; }
  std::string kicked() override { return {}; }
  std::string token_expired() override { return {}; }
  std::string ping(std::uint64_t n) override;
  std::string notice(std::string_view) override { return {}; }

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
  void append_trade(std::string& out, std::string_view symbol,
                    std::uint64_t seq, const char (&time)[6]);
  void append_book(std::string& out, std::string_view symbol, std::uint64_t seq,
                   const char (&time)[6]);

  MarketClock clock_;
  // Per symbol: the last trade seq sent (for the books' ACML_VOL).
  std::map<std::string, std::uint64_t, std::less<>> last_trade_;
};

}  // namespace examples::sim
