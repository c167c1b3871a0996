// SPDX-License-Identifier: Apache-2.0
#include "sim/broker_sim.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/json_reader.h"
#include "sim/kis_dialect.h"
#include "sim/kiwoom_dialect.h"
#include "sim/market.h"
#include "sim/settrade_sim.h"

namespace examples::sim {
namespace {

using feedkit::Duration;
using feedkit::SteadyClock;
using feedkit::testing::HttpRequest;
using feedkit::testing::HttpResponse;

bool valid_symbol(std::string_view symbol) {
  if (symbol.empty() || symbol.size() > 12) return false;
  for (char c : symbol) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

double seconds_between(feedkit::SteadyTime from, feedkit::SteadyTime to) {
  return std::chrono::duration<double>(to - from).count();
}

// YYYYMMDDHHMMSS in KST of a system time.
std::string kst_datetime(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto kst = t + hours(9);
  const auto day = floor<days>(kst);
  const year_month_day ymd(day);
  const hh_mm_ss<seconds> hms(floor<seconds>(kst - day));
  char out[32];
  std::snprintf(
      out, sizeof(out), "%04d%02u%02u%02d%02d%02d",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()));
  return out;
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

std::string_view to_string(Broker broker) noexcept {
  if (broker == Broker::settrade) return "settrade";
  return broker == Broker::kis ? "kis" : "kiwoom";
}

absl::Status BrokerSimOptions::validate() const {
  auto bad = [](std::string what) {
    return absl::InvalidArgumentError(absl::StrCat("BrokerSim: ", what));
  };
  if (symbols.empty()) return bad("symbols must not be empty");
  for (const std::string& s : symbols) {
    if (!valid_symbol(s)) {
      return bad(
          absl::StrCat("symbol \"", s, "\" must be 1-12 letters or digits"));
    }
  }
  if (!(trade_rate > 0)) {
    return bad(absl::StrCat("trade_rate must be > 0, got ", trade_rate));
  }
  if (!(book_rate >= 0)) {
    return bad(absl::StrCat("book_rate must be >= 0, got ", book_rate));
  }
  if (broker == Broker::settrade && !(book_rate > 0)) {
    return bad(absl::StrCat(
        "settrade publishes books only: book_rate must be > 0, got ",
        book_rate));
  }
  if (records_per_frame.empty()) return bad("records_per_frame is empty");
  for (std::size_t n : records_per_frame) {
    if (n < 1 || n > 10) {
      return bad(
          absl::StrCat("records_per_frame values must be 1-10, got ", n));
    }
  }
  if (appkey.empty()) return bad("appkey must not be empty");
  if (secretkey.empty()) return bad("secretkey must not be empty");
  if (token_ttl <= Duration::zero()) return bad("token_ttl must be > 0");
  if (ping_interval < Duration::zero())
    return bad("ping_interval must be >= 0");
  if (start_seconds < 0 || start_seconds >= 86'400) {
    return bad(
        absl::StrCat("start_seconds must be 0-86399, got ", start_seconds));
  }
  return absl::OkStatus();
}

BrokerSim::BrokerSim(BrokerSimOptions options)
    : options_(std::move(options)),
      started_at_(SteadyClock::now()),
      started_unix_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()) {
  std::random_device device;
  rng_state_ = (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

absl::StatusOr<std::unique_ptr<BrokerSim>> BrokerSim::start(
    BrokerSimOptions options) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  std::unique_ptr<BrokerSim> sim(new BrokerSim(std::move(options)));
  const BrokerSimOptions& o = sim->options_;
  auto start_rest = [&]() -> absl::Status {
    auto rest = feedkit::testing::LoopbackHttpServer::start(
        [raw = sim.get()](const HttpRequest& r) { return raw->on_rest(r); },
        o.rest_port);
    if (!rest.ok()) return rest.status();
    sim->rest_ = std::move(rest).value();
    return absl::OkStatus();
  };
  if (o.broker == Broker::settrade) {
    auto settrade = SettradeSim::start(o);
    if (!settrade.ok()) return settrade.status();
    sim->settrade_ = std::move(settrade).value();
    if (absl::Status s = start_rest(); !s.ok()) return s;
    return sim;
  }

  MarketClock clock(sim->started_at_, o.start_seconds,
                    MarketClock::today_kst());
  std::shared_ptr<feedkit::testing::ServerDialect> dialect;
  if (o.broker == Broker::kis) {
    dialect = std::make_shared<KisDialect>(std::move(clock));
  } else {
    dialect = std::make_shared<KiwoomDialect>(std::move(clock));
  }
  feedkit::testing::FaultyWsServerOptions ws_options;
  ws_options.dialect = std::move(dialect);
  ws_options.port = o.ws_port;
  auto ws = feedkit::testing::FaultyWsServer::start(std::move(ws_options));
  if (!ws.ok()) return ws.status();
  sim->ws_ = std::move(ws).value();
  if (absl::Status s = start_rest(); !s.ok()) return s;

  feedkit::testing::FaultyWsServer& server = *sim->ws_;
  server.revoke_secrets();  // only what the REST endpoint issues
  server.set_session_conflict(
      o.broker == Broker::kis
          ? feedkit::testing::SessionConflict::reject_newcomer
          : feedkit::testing::SessionConflict::kick_incumbent);
  server.set_app_ping(o.ping_interval);
  server.set_max_missed_pings(o.max_missed_pings);
  server.set_records_per_frame(o.records_per_frame);
  for (const std::string& symbol : o.symbols) {
    server.stream(sim->trade_key(symbol), o.trade_rate);
    if (o.book_rate > 0) server.stream(sim->book_key(symbol), o.book_rate);
  }
  return sim;
}

BrokerSim::~BrokerSim() {
  // The REST handler uses this object: stop it first.
  rest_.reset();
  ws_.reset();
}

std::string BrokerSim::ws_url() const {
  if (settrade_) return settrade_->ws_url();
  return absl::StrCat(
      "ws://127.0.0.1:", ws_->port(),
      options_.broker == Broker::kis ? "/tryitout" : "/api/dostk/websocket");
}

std::string BrokerSim::rest_url() const { return rest_->url(); }

std::string BrokerSim::trade_key(std::string_view symbol) const {
  if (options_.broker == Broker::settrade) return "";  // books only
  return absl::StrCat(
      std::string(options_.broker == Broker::kis ? kKisTradeTrId
                                                 : kKiwoomTradeType),
      "|", std::string(symbol));
}

std::string BrokerSim::book_key(std::string_view symbol) const {
  if (options_.broker == Broker::settrade) {
    return absl::StrCat("proto/topic/bidofferv3/", std::string(symbol));
  }
  return absl::StrCat(
      std::string(options_.broker == Broker::kis ? kKisBookTrId
                                                 : kKiwoomBookType),
      "|", std::string(symbol));
}

std::string BrokerSim::ready_line() const {
  std::string out = absl::StrCat(
      R"({"event":"ready","broker":")", std::string(to_string(options_.broker)),
      R"(","ws_url":")", ws_url(), R"(","ws_port":)",
      settrade_ ? settrade_->ws_port() : ws_->port(), R"(,"rest_url":")",
      rest_url(), R"(","rest_port":)", rest_->port(), R"(,"started_unix_ns":)",
      started_unix_ns_, R"(,"symbols":[)");
  std::string trades;
  std::string books;
  for (std::size_t i = 0; i < options_.symbols.size(); ++i) {
    const char* comma = i == 0 ? "" : ",";
    absl::StrAppend(&out, comma, "\"", options_.symbols[i], "\"");
    if (!settrade_) {
      absl::StrAppend(&trades, comma, "\"", trade_key(options_.symbols[i]),
                      "\"");
    }
    absl::StrAppend(&books, comma, "\"", book_key(options_.symbols[i]), "\"");
  }
  absl::StrAppend(&out, R"(],"trade_keys":[)", trades, R"(],"book_keys":[)",
                  options_.book_rate > 0 ? books : "", "]");
  if (settrade_)
    absl::StrAppend(&out, R"(,"ca_file":")", settrade_->ca_file(), "\"");
  return out + "}";
}

std::string BrokerSim::issue_secret() {
  // splitmix64: unpredictable enough for a loopback simulator.
  auto next = [this] {
    std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  static constexpr char kHex[] = "0123456789abcdef";
  std::string secret;
  std::lock_guard<std::mutex> lock(rng_mu_);
  if (options_.broker == Broker::kis) {  // a UUID, like the real keys
    for (int group : {8, 4, 4, 4, 12}) {
      if (!secret.empty()) secret += '-';
      std::uint64_t bits = next();
      for (int i = 0; i < group; ++i, bits >>= 4) secret += kHex[bits & 0xF];
    }
  } else {
    static constexpr char kAlnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 64; ++i) secret += kAlnum[next() % 62];
  }
  return secret;
}

HttpResponse BrokerSim::on_rest(const HttpRequest& request) {
  if (settrade_) return settrade_->on_rest(request, issued_);
  const bool kis = options_.broker == Broker::kis;
  const std::string_view path = kis ? "/oauth2/Approval" : "/oauth2/token";
  if (request.target != path) {
    return json_response(404, R"({"error":"not found"})");
  }
  if (request.method != "POST") {
    return json_response(405, R"({"error":"method not allowed"})");
  }
  json::Document doc;
  std::optional<std::string> grant, appkey, secretkey;
  if (doc.parse(request.body) == json::JsonError::none) {
    grant = doc.root()["grant_type"].decoded_string();
    appkey = doc.root()["appkey"].decoded_string();
    secretkey = doc.root()["secretkey"].decoded_string();
  }
  const bool valid = grant == "client_credentials" &&
                     appkey == options_.appkey &&
                     secretkey == options_.secretkey;
  if (!valid) {
    if (kis) {
      return json_response(
          403,
          R"({"error_code":"EGW00105","error_description":"유효하지 않은 AppKey 또는 AppSecret입니다."})");
    }
    return json_response(
        200,
        R"({"return_code":3,"return_msg":"인증에 실패했습니다: invalid appkey or secretkey"})");
  }
  const std::string secret = issue_secret();
  ws_->add_accepted_secret(secret, SteadyClock::now() + options_.token_ttl);
  ++issued_;
  std::string body;
  if (kis) {
    body = R"({"approval_key":)";
    json::append_quoted(body, secret);
    body += '}';
  } else {
    const auto expires =
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::seconds>(options_.token_ttl);
    body = absl::StrCat(
        R"({"expires_dt":")", kst_datetime(expires),
        R"(","token_type":"bearer","token":")", secret,
        R"(","return_code":0,"return_msg":"정상적으로 처리되었습니다"})");
  }
  return json_response(200, std::move(body));
}

void BrokerSim::apply(const FaultCommand& command, double speed) {
  if (settrade_) return settrade_->apply(command, speed);
  auto scaled = [&](Duration d) {
    return std::chrono::duration_cast<Duration>(d / (speed > 0 ? speed : 1.0));
  };
  if (command.action != FaultAction::end) {
    std::lock_guard<std::mutex> lock(faults_mu_);
    faults_.emplace_back(seconds_between(started_at_, SteadyClock::now()),
                         command.to_string());
  }
  feedkit::testing::FaultyWsServer& server = *ws_;
  switch (command.action) {
    case FaultAction::stall:
      server.stall_all(scaled(command.duration));
      break;
    case FaultAction::close:
      server.close_all();
      break;
    case FaultAction::reset:
      server.reset_all();
      break;
    case FaultAction::keep_subscriptions:
      // Ghosts: the old session's keys outlive it, so even a client that
      // unsubscribes first is answered ALREADY IN SUBSCRIBE (the incident).
      server.set_keeps_subscriptions(command.on, /*ghosts=*/true);
      break;
    case FaultAction::max_subscriptions:
      server.set_max_subscriptions(command.count);
      break;
    case FaultAction::appkey_in_use:
      server.occupy_account(scaled(command.duration));
      break;
    case FaultAction::expire_token:
      server.revoke_secrets();
      break;
    case FaultAction::burst:
      server.burst(command.multiplier, scaled(command.duration));
      break;
    case FaultAction::malformed:
      server.send_malformed(command.count);
      break;
    case FaultAction::end:
      break;
  }
}

std::uint64_t BrokerSim::trades_published(std::string_view symbol) const {
  if (settrade_) return 0;  // books only
  return ws_->published(trade_key(symbol));
}

std::vector<SentRecord> BrokerSim::report() const {
  std::vector<SentRecord> out;
  const std::vector<feedkit::testing::ConnectionLog> logs = connection_logs();
  for (std::size_t c = 0; c < logs.size(); ++c) {
    for (const auto& [key, sent] : logs[c].data) {
      SentRecord r;
      r.connection = c;
      r.key = key;
      const std::size_t bar = key.find_last_of("|/");  // settrade: a topic
      r.symbol = bar == std::string::npos ? key : key.substr(bar + 1);
      r.trade = key == trade_key(r.symbol);
      r.frames = sent.frames;
      r.records = sent.records;
      r.first_seq = sent.first_seq;
      r.last_seq = sent.last_seq;
      if (r.trade && r.records > 0) {
        r.first_volume = trade_volume(r.first_seq);
        r.first_cumulative_volume = cumulative_volume(r.first_seq);
        r.last_cumulative_volume = cumulative_volume(r.last_seq);
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<feedkit::testing::ConnectionLog> BrokerSim::connection_logs()
    const {
  return settrade_ ? settrade_->connection_logs() : ws_->connection_logs();
}

std::string BrokerSim::report_jsonl() const {
  std::string out;
  const std::vector<feedkit::testing::ConnectionLog> logs = connection_logs();
  for (std::size_t c = 0; c < logs.size(); ++c) {
    const auto& log = logs[c];
    absl::StrAppend(&out, R"({"type":"connection","connection":)", c,
                    R"(,"opened_s":)",
                    seconds_between(started_at_, log.accepted_at));
    if (log.ended_at != feedkit::SteadyTime::max()) {
      absl::StrAppend(&out, R"(,"closed_s":)",
                      seconds_between(started_at_, log.ended_at));
    }
    absl::StrAppend(&out, R"(,"pings_sent":)", log.pings_sent,
                    R"(,"heartbeats_received":)", log.heartbeats_received,
                    R"(,"malformed_sent":)", log.malformed_sent,
                    R"(,"already_answers":)", log.already_answers, "}\n");
  }
  for (const SentRecord& r : report()) {
    absl::StrAppend(&out, R"({"type":"sent","connection":)", r.connection,
                    R"(,"key":")", r.key, R"(","symbol":")", r.symbol,
                    R"(","kind":")", r.trade ? "trade" : "book",
                    R"(","frames":)", r.frames, R"(,"records":)", r.records,
                    R"(,"first_seq":)", r.first_seq, R"(,"last_seq":)",
                    r.last_seq);
    if (r.trade) {
      absl::StrAppend(
          &out, R"(,"first_volume":)", r.first_volume,
          R"(,"first_cumulative_volume":)", r.first_cumulative_volume,
          R"(,"last_cumulative_volume":)", r.last_cumulative_volume);
    }
    out += "}\n";
  }
  {
    std::lock_guard<std::mutex> lock(faults_mu_);
    for (const auto& [at_s, command] : faults_) {
      absl::StrAppend(&out, R"({"type":"fault","at_s":)", at_s,
                      R"(,"command":)");
      json::append_quoted(out, command);
      out += "}\n";
    }
  }
  absl::StrAppend(
      &out, R"({"type":"summary","broker":")",
      std::string(to_string(options_.broker)), R"(","started_unix_ns":)",
      started_unix_ns_, R"(,"elapsed_s":)",
      seconds_between(started_at_, SteadyClock::now()), R"(,"connections":)",
      logs.size(), R"(,"secrets_issued":)", issued_.load(),
      R"(,"rest_requests":)", rest_->requests(), R"(,"trades_published":{)");
  for (std::size_t i = 0; i < options_.symbols.size(); ++i) {
    const std::uint64_t last = trades_published(options_.symbols[i]);
    absl::StrAppend(&out, i == 0 ? "" : ",", "\"", options_.symbols[i],
                    R"(":{"last_seq":)", last, R"(,"cumulative_volume":)",
                    cumulative_volume(last), "}");
  }
  out += "}}\n";
  return out;
}

}  // namespace examples::sim
