// feedkit-sim end to end on loopback: for each simulated broker (KIS,
// Kiwoom), a real feedkit::WsClient with a small protocol written here for
// that wire format gets its key or token from the sim's REST endpoint,
// subscribes, and reads trades, while the test applies the fault script's
// commands. Every test checks continuity of the cumulative volume within each
// epoch, and, once the streams are stopped and drained, that what the client
// received on each connection is exactly what the sim recorded sending there.
// The last tests run the feedkit-sim program itself (flags, ready line,
// record file, signals, exit codes).
//
// Test that header file is self-contained.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>  // mkdtemp
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "common/json_reader.h"
#include "feedkit/ws_client.h"
#include "sim/broker_sim.h"
#include "sim/market.h"
#include "support/child_process.h"

namespace examples::sim {

// For gtest's messages (found by argument-dependent lookup).
void PrintTo(Broker broker, std::ostream* os) { *os << to_string(broker); }

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using feedkit::Classified;
using feedkit::ConnectionState;
using feedkit::Credentials;
using feedkit::Duration;
using feedkit::FrameKind;
using feedkit::GapEvent;
using feedkit::SteadyClock;
using feedkit::SteadyTime;
using feedkit::WsClient;
using feedkit::WsClientStats;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr Duration kWait = seconds(15);  // the most any condition may take
const std::vector<std::string> kSymbols = {"005930", "000660"};

// --- REST ---------------------------------------------------------------

struct HttpResult {
  int status = 0;
  std::string body;
};

// POSTs `body` to 127.0.0.1:`port``target`; status 0 if it failed.
HttpResult http_post(std::uint16_t port, const std::string& target,
                     const std::string& body) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(seconds(5));
  stream.socket().connect(
      net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  http::request<http::string_body> request(http::verb::post, target, 11);
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request, ec);
  if (ec) return {};
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  if (ec) return {};
  return {static_cast<int>(response.result_int()), response.body()};
}

std::string credentials_body(std::string_view appkey,
                             std::string_view secretkey) {
  std::string body = R"({"grant_type":"client_credentials","appkey":)";
  json::append_quoted(body, appkey);
  body += R"(,"secretkey":)";
  json::append_quoted(body, secretkey);
  body += '}';
  return body;
}

std::string rest_path(Broker broker) {
  return broker == Broker::kis ? "/oauth2/Approval" : "/oauth2/token";
}

// Returns the key (KIS) or token (Kiwoom) of a REST answer, or "".
std::string secret_of(Broker broker, const std::string& body) {
  json::Document doc;
  if (doc.parse(body) != json::JsonError::none) return {};
  return doc.root()[broker == Broker::kis ? "approval_key" : "token"]
      .decoded_string()
      .value_or("");
}

// --- Reading trades as a client would --------------------------------------

struct Trade {
  std::string symbol;
  std::uint64_t volume = 0;
  std::uint64_t cumulative = 0;
};

std::optional<std::uint64_t> to_u64(std::string_view s) {
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (true) {
    const std::size_t next = s.find(sep, at);
    out.push_back(s.substr(at, next - at));
    if (next == std::string_view::npos) return out;
    at = next + 1;
  }
}

// The trades of a data frame (none for a book), and how many records it
// held; nullopt if the frame is not a well-formed data frame.
struct DataFrame {
  std::vector<Trade> trades;
  std::size_t records = 0;
};

std::optional<DataFrame> read_kis(std::string_view frame) {
  const auto parts = split(frame, '|');
  if (parts.size() != 4 || parts[0] != "0") return std::nullopt;
  const auto count = to_u64(parts[2]);
  if (!count || *count == 0 || parts[2].size() != 3) return std::nullopt;
  const bool trade = parts[1] == "H0STCNT0";
  const std::size_t fields = trade ? 46 : 62;
  if (!trade && parts[1] != "H0STASP0") return std::nullopt;
  const auto values = split(parts[3], '^');
  if (values.size() != *count * fields) return std::nullopt;
  DataFrame out;
  out.records = *count;
  for (std::size_t r = 0; trade && r < *count; ++r) {
    const std::string_view* f = &values[r * fields];
    const auto volume = to_u64(f[12]);
    const auto cumulative = to_u64(f[13]);
    if (f[0].empty() || f[1].size() != 6 || !volume || !cumulative) {
      return std::nullopt;
    }
    out.trades.push_back({std::string(f[0]), *volume, *cumulative});
  }
  return out;
}

std::optional<DataFrame> read_kiwoom(std::string_view frame) {
  json::Document doc;
  if (doc.parse(frame) != json::JsonError::none) return std::nullopt;
  const json::Value root = doc.root();
  if (root["trnm"].plain_string() != std::optional<std::string_view>("REAL") ||
      !root["data"].is(json::Type::array)) {
    return std::nullopt;
  }
  DataFrame out;
  for (json::Value entry : root["data"].elements()) {
    ++out.records;
    const auto type = entry["type"].plain_string();
    const auto item = entry["item"].plain_string();
    if (!type || !item) return std::nullopt;
    if (*type != "0B") continue;
    const json::Value values = entry["values"];
    const auto volume = to_u64(values["15"].plain_string().value_or(""));
    const auto cumulative = to_u64(values["13"].plain_string().value_or(""));
    if (!volume || !cumulative ||
        values["20"].plain_string().value_or("").size() != 6) {
      return std::nullopt;
    }
    out.trades.push_back({std::string(*item), *volume, *cumulative});
  }
  if (out.records == 0) return std::nullopt;
  return out;
}

// --- Protocols for WsClient ------------------------------------------------

// What the protocols saw, for the test thread.
struct Seen {
  std::atomic<int> acks{0};
  std::atomic<int> already{0};
  std::atomic<int> max_subscriptions{0};
  std::atomic<int> busy{0};
  std::atomic<int> auth_rejected{0};
  std::atomic<int> notices{0};
  std::atomic<int> heartbeats{0};
  std::atomic<int> malformed{0};
};

Classified make(FrameKind kind, std::string key = {}, std::string reason = {},
                std::string reply = {}) {
  Classified c;
  c.kind = kind;
  c.key = std::move(key);
  c.reason = std::move(reason);
  c.reply = std::move(reply);
  return c;
}

// Counts what it classifies.
class CountingProtocol : public feedkit::Protocol {
 public:
  CountingProtocol(std::shared_ptr<Seen> seen, bool keeps)
      : seen_(std::move(seen)), keeps_(keeps) {}
  bool broker_keeps_subscriptions() const override { return keeps_; }
  Classified classify(std::string_view frame) override {
    Classified c = read(frame);
    switch (c.kind) {
      case FrameKind::subscribe_ack:
        ++seen_->acks;
        break;
      case FrameKind::already_subscribed:
        ++seen_->already;
        break;
      case FrameKind::max_subscriptions:
        ++seen_->max_subscriptions;
        break;
      case FrameKind::busy:
        ++seen_->busy;
        break;
      case FrameKind::auth_rejected:
        ++seen_->auth_rejected;
        break;
      case FrameKind::notice:
        ++seen_->notices;
        break;
      case FrameKind::heartbeat:
        ++seen_->heartbeats;
        break;
      case FrameKind::malformed:
        ++seen_->malformed;
        break;
      default:
        break;
    }
    return c;
  }

 protected:
  virtual Classified read(std::string_view frame) = 0;

 private:
  std::shared_ptr<Seen> seen_;
  bool keeps_;
};

// KIS: keys "<tr_id>|<tr_key>", the approval key in every request.
class KisTestProtocol final : public CountingProtocol {
 public:
  using CountingProtocol::CountingProtocol;
  std::vector<std::string> login_frames(const Credentials&) override {
    return {};
  }
  std::string subscribe_frame(std::string_view key,
                              const Credentials& c) override {
    return request(key, c, '1');
  }
  std::string unsubscribe_frame(std::string_view key,
                                const Credentials& c) override {
    return request(key, c, '2');
  }

 private:
  static std::string request(std::string_view key, const Credentials& c,
                             char tr_type) {
    const std::size_t bar = key.find('|');
    std::string out = R"({"header":{"approval_key":)";
    json::append_quoted(out, c.secret);
    out += R"(,"custtype":"P","tr_type":")";
    out += tr_type;
    out += R"(","content-type":"utf-8"},"body":{"input":{"tr_id":)";
    json::append_quoted(out, key.substr(0, bar));
    out += R"(,"tr_key":)";
    json::append_quoted(out, key.substr(bar + 1));
    out += "}}}";
    return out;
  }

  Classified read(std::string_view frame) override {
    if (!frame.empty() && (frame[0] == '0' || frame[0] == '1')) {
      return make(FrameKind::data);
    }
    json::Document doc;
    if (doc.parse(frame) != json::JsonError::none) {
      return make(FrameKind::malformed);
    }
    const json::Value header = doc.root()["header"];
    const auto tr_id = header["tr_id"].plain_string();
    if (!tr_id) return make(FrameKind::malformed);
    if (*tr_id == "PINGPONG") {
      return make(FrameKind::heartbeat, {}, {}, std::string(frame));
    }
    const std::string key =
        std::string(*tr_id) + "|" +
        std::string(header["tr_key"].plain_string().value_or(""));
    const auto msg_cd = doc.root()["body"]["msg_cd"].plain_string();
    if (!msg_cd) return make(FrameKind::malformed);
    if (*msg_cd == "OPSP0000") return make(FrameKind::subscribe_ack, key);
    if (*msg_cd == "OPSP0001" || *msg_cd == "OPSP0003") {
      return make(FrameKind::unsubscribe_ack, key);
    }
    if (*msg_cd == "OPSP0002") return make(FrameKind::already_subscribed, key);
    if (*msg_cd == "OPSP0008") return make(FrameKind::max_subscriptions, key);
    if (*msg_cd == "OPSP8996") return make(FrameKind::busy);
    if (*msg_cd == "OPSP0011") return make(FrameKind::auth_rejected);
    return make(FrameKind::subscribe_reject, key, std::string(*msg_cd));
  }
};

// Kiwoom: LOGIN first, one REG/REMOVE per key "<type>|<item>", replies
// matched to requests in order.
class KiwoomTestProtocol final : public CountingProtocol {
 public:
  using CountingProtocol::CountingProtocol;
  std::vector<std::string> login_frames(const Credentials& c) override {
    awaiting_.clear();
    std::string out = R"({"trnm":"LOGIN","token":)";
    json::append_quoted(out, c.secret);
    return {out + "}"};
  }
  std::string subscribe_frame(std::string_view key,
                              const Credentials&) override {
    return request("REG", key);
  }
  std::string unsubscribe_frame(std::string_view key,
                                const Credentials&) override {
    return request("REMOVE", key);
  }

 private:
  std::string request(std::string_view trnm, std::string_view key) {
    awaiting_.emplace_back(std::string(trnm), std::string(key));
    const std::size_t bar = key.find('|');
    std::string out = R"({"trnm":")";
    out += trnm;
    out += R"(","grp_no":"1","refresh":"1","data":[{"item":[)";
    json::append_quoted(out, key.substr(bar + 1));
    out += R"(],"type":[)";
    json::append_quoted(out, key.substr(0, bar));
    out += "]}]}";
    return out;
  }

  std::string take(std::string_view trnm) {
    for (auto it = awaiting_.begin(); it != awaiting_.end(); ++it) {
      if (it->first == trnm) {
        std::string key = std::move(it->second);
        awaiting_.erase(it);
        return key;
      }
    }
    return {};
  }

  Classified read(std::string_view frame) override {
    json::Document doc;
    if (doc.parse(frame) != json::JsonError::none) {
      return make(FrameKind::malformed);
    }
    const json::Value root = doc.root();
    const auto trnm = root["trnm"].plain_string();
    if (!trnm) return make(FrameKind::malformed);
    const std::int64_t code = root["return_code"].integer().value_or(0);
    const std::string message =
        root["return_msg"].decoded_string().value_or("");
    if (*trnm == "REAL") return make(FrameKind::data);
    if (*trnm == "PING") {
      return make(FrameKind::heartbeat, {}, {}, std::string(frame));
    }
    if (*trnm == "LOGIN") {
      if (code == 0) return make(FrameKind::login_ok);
      return make(code == 8005 ? FrameKind::auth_rejected : FrameKind::busy);
    }
    if (*trnm == "REG") {
      std::string key = take("REG");
      if (code == 0) return make(FrameKind::subscribe_ack, std::move(key));
      if (message.find("초과") != std::string::npos) {
        return make(FrameKind::max_subscriptions, std::move(key));
      }
      return make(FrameKind::subscribe_reject, std::move(key), message);
    }
    if (*trnm == "REMOVE") {
      return make(FrameKind::unsubscribe_ack, take("REMOVE"));
    }
    if (*trnm == "SYSTEM") {
      if (root["code"].plain_string() ==
          std::optional<std::string_view>("R10001")) {
        return make(FrameKind::busy);
      }
      return make(FrameKind::notice, {}, "system message");
    }
    return make(FrameKind::malformed);
  }

  std::deque<std::pair<std::string, std::string>> awaiting_;
};

// --- A WsClient against a sim -----------------------------------------------

// Trades of one symbol received on one connection (epoch).
struct Run {
  std::uint64_t first_volume = 0;
  std::uint64_t first_cumulative = 0;
  std::uint64_t last_cumulative = 0;
  std::uint64_t trades = 0;
  std::uint64_t breaks = 0;  // consecutive trades with C_prev + v != C
};

struct FeedOptions {
  bool naive = false;  // broker_keeps_subscriptions() false: no UNSUB first
  Duration idle_timeout = seconds(5);
  bool bogus_first_secret = false;  // the first credentials are made up
};

class Feed {
 public:
  Feed(BrokerSim& sim, FeedOptions options = {})
      : sim_(sim), broker_(sim.options().broker) {
    seen_ = std::make_shared<Seen>();
    std::unique_ptr<feedkit::Protocol> protocol;
    if (broker_ == Broker::kis) {
      protocol = std::make_unique<KisTestProtocol>(seen_, !options.naive);
    } else {
      protocol = std::make_unique<KiwoomTestProtocol>(seen_, !options.naive);
    }
    feedkit::WsClientOptions o;
    o.url = sim.ws_url();
    o.connect_timeout = seconds(2);
    o.handshake_timeout = seconds(2);
    o.login_timeout = seconds(2);
    o.idle_timeout =
        std::chrono::duration_cast<milliseconds>(options.idle_timeout);
    o.stable_after = milliseconds(100);
    o.auth_refresh_cooldown = milliseconds(1);
    o.backoff = {.initial = milliseconds(50),
                 .multiplier = 1.6,
                 .max = milliseconds(300)};
    o.breaker.wait_in_open = milliseconds(200);
    o.subscriptions = {.max_per_connection = 41,
                       .confirm_timeout = milliseconds(1000),
                       .max_attempts = 3,
                       .pacing = {.rate_per_second = 1000, .burst = 100}};
    bogus_first_ = options.bogus_first_secret;
    feedkit::WsClientCallbacks callbacks;
    callbacks.on_data = [this](std::string_view frame, SteadyTime,
                               std::uint64_t epoch) { on_data(frame, epoch); };
    callbacks.on_gap = [this](const GapEvent& gap) {
      std::lock_guard lock(mu_);
      gaps_.push_back(gap);
      cv_.notify_all();
    };
    callbacks.on_state = [this](ConnectionState, ConnectionState to) {
      if (to == ConnectionState::live) ++lives_;
      cv_.notify_all();
    };
    auto provider = [this](bool force, auto done) { credentials(force, done); };
    auto client = WsClient::create(ioc_, std::move(o), std::move(protocol),
                                   provider, std::move(callbacks));
    EXPECT_TRUE(client.ok()) << client.status();
    if (client.ok()) client_ = *std::move(client);
  }

  ~Feed() { stop(); }

  void start(const std::vector<std::string>& keys) {
    for (const auto& k : keys) client_->want(k);
    client_->start();
    runner_ = std::thread([this] { ioc_.run(); });
  }

  void stop() {
    if (!runner_.joinable()) return;
    std::promise<void> stopped;
    client_->stop([&] { stopped.set_value(); });
    EXPECT_EQ(stopped.get_future().wait_for(seconds(5)),
              std::future_status::ready);
    ioc_.stop();
    runner_.join();
  }

  // Blocks until `pred()` holds, re-checking it (without the feed's lock)
  // whenever a callback ran and at least every 10 ms.
  template <class Pred>
  bool wait(Pred pred, Duration timeout = kWait) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    while (!pred()) {
      if (SteadyClock::now() >= deadline) return false;
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, milliseconds(10));
    }
    return true;
  }
  // Waits until the client is live with every key confirmed.
  bool wait_live(std::size_t confirmed, Duration timeout = kWait) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      const WsClientStats s = client_->stats();
      if (s.state == ConnectionState::live &&
          s.subscriptions.confirmed == confirmed) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(5));  // polling real I/O
    }
    return false;
  }
  // Waits until `symbol` has `n` trades in the current epoch.
  bool wait_trades(const std::string& symbol, std::uint64_t n) {
    return wait([&] { return current(symbol).trades >= n; });
  }
  // The run of `symbol` on the client's current connection (empty if none).
  Run current(const std::string& symbol) {
    const std::uint64_t epoch = client_->stats().epoch;
    std::lock_guard lock(mu_);
    auto it = runs_.find({epoch, symbol});
    return it == runs_.end() ? Run{} : it->second;
  }
  // Stops the sim's streams and waits until every symbol the current
  // connection holds has delivered the last trade published.
  void drain(const std::vector<std::string>& symbols) {
    sim_.server().stop_streams();
    for (const std::string& s : symbols) {
      const std::uint64_t target = cumulative_volume(sim_.trades_published(s));
      EXPECT_TRUE(wait([&] { return current(s).last_cumulative == target; }))
          << s << " never reached the last trade published: got C = "
          << current(s).last_cumulative << " in epoch " << stats().epoch
          << ", want C = " << target;
    }
  }

  std::map<std::pair<std::uint64_t, std::string>, Run> runs() {
    std::lock_guard lock(mu_);
    return runs_;
  }
  std::vector<GapEvent> gaps() {
    std::lock_guard lock(mu_);
    return gaps_;
  }
  std::uint64_t multi_record_frames() {
    std::lock_guard lock(mu_);
    return multi_record_frames_;
  }
  std::uint64_t unreadable_data() {
    std::lock_guard lock(mu_);
    return unreadable_;
  }
  int rest_calls() const { return rest_calls_; }
  int lives() const { return lives_; }  // times the client went live
  const Seen& seen() const { return *seen_; }
  WsClientStats stats() const { return client_->stats(); }
  WsClient& client() { return *client_; }

  // Every symbol's trades were consecutive on every connection.
  void expect_continuous() {
    for (const auto& [where, run] : runs()) {
      EXPECT_EQ(run.breaks, 0u)
          << where.second << " in epoch " << where.first << ": " << run.breaks
          << " breaks in the cumulative volume";
    }
  }

  // What the client received on each connection is exactly what the sim
  // recorded sending there (every trade record matched, every run matched).
  void expect_agrees_with_record() {
    const std::vector<SentRecord> sent = sim_.report();
    std::size_t matched = 0;
    for (const auto& [where, run] : runs()) {
      const SentRecord* record = nullptr;
      for (const SentRecord& r : sent) {
        if (r.trade && r.symbol == where.second && r.records > 0 &&
            r.first_cumulative_volume == run.first_cumulative) {
          record = &r;
        }
      }
      ASSERT_NE(record, nullptr)
          << where.second << " in epoch " << where.first
          << ": no connection was sent a first trade with C = "
          << run.first_cumulative;
      EXPECT_EQ(record->first_volume, run.first_volume);
      EXPECT_EQ(record->last_cumulative_volume, run.last_cumulative)
          << where.second << " in epoch " << where.first;
      EXPECT_EQ(record->records, run.trades)
          << where.second << " in epoch " << where.first;
      ++matched;
    }
    std::size_t trade_records = 0;
    for (const SentRecord& r : sent) trade_records += r.trade && r.records > 0;
    EXPECT_EQ(matched, trade_records)
        << "the sim sent trades on a connection the client saw none of";
  }

 private:
  void credentials(bool force,
                   std::function<void(absl::StatusOr<Credentials>)> done) {
    if (bogus_first_) {
      bogus_first_ = false;
      return done(Credentials{"not-an-issued-key"});
    }
    if (!force && !cached_.empty()) return done(Credentials{cached_});
    ++rest_calls_;
    const BrokerSimOptions& o = sim_.options();
    const HttpResult r = http_post(sim_.rest().port(), rest_path(broker_),
                                   credentials_body(o.appkey, o.secretkey));
    cached_ = secret_of(broker_, r.body);
    if (cached_.empty()) {
      return done(absl::UnavailableError("REST refused the credentials"));
    }
    done(Credentials{cached_});
  }

  void on_data(std::string_view frame, std::uint64_t epoch) {
    const std::optional<DataFrame> data =
        broker_ == Broker::kis ? read_kis(frame) : read_kiwoom(frame);
    std::lock_guard lock(mu_);
    if (!data) {
      ++unreadable_;
    } else {
      if (data->records > 1) ++multi_record_frames_;
      for (const Trade& t : data->trades) {
        auto [it, fresh] = runs_.try_emplace({epoch, t.symbol});
        Run& run = it->second;
        if (fresh) {
          run.first_volume = t.volume;
          run.first_cumulative = t.cumulative;
        } else if (run.last_cumulative + t.volume != t.cumulative) {
          ++run.breaks;
        }
        run.last_cumulative = t.cumulative;
        ++run.trades;
      }
    }
    cv_.notify_all();
  }

  BrokerSim& sim_;
  const Broker broker_;
  std::shared_ptr<Seen> seen_;
  net::io_context ioc_;
  std::shared_ptr<WsClient> client_;
  std::thread runner_;
  bool bogus_first_ = false;
  std::string cached_;
  std::atomic<int> rest_calls_{0};
  std::atomic<int> lives_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::uint64_t, std::string>, Run> runs_;
  std::vector<GapEvent> gaps_;
  std::uint64_t multi_record_frames_ = 0;
  std::uint64_t unreadable_ = 0;
};

// --- Fixture ----------------------------------------------------------------

class FeedkitSim : public ::testing::TestWithParam<Broker> {
 protected:
  std::unique_ptr<BrokerSim> start_sim(double trade_rate = 200,
                                       Duration ping = Duration::zero(),
                                       std::size_t max_missed_pings = 0) {
    BrokerSimOptions o;
    o.max_missed_pings = max_missed_pings;
    o.broker = GetParam();
    o.symbols = kSymbols;
    o.trade_rate = trade_rate;
    o.book_rate = 20;
    o.ping_interval = ping;
    auto sim = BrokerSim::start(o);
    EXPECT_TRUE(sim.ok()) << sim.status();
    return sim.ok() ? std::move(sim).value() : nullptr;
  }

  std::vector<std::string> trade_keys(const BrokerSim& sim) {
    std::vector<std::string> keys;
    for (const auto& s : kSymbols) keys.push_back(sim.trade_key(s));
    return keys;
  }
  std::vector<std::string> all_keys(const BrokerSim& sim) {
    std::vector<std::string> keys = trade_keys(sim);
    for (const auto& s : kSymbols) keys.push_back(sim.book_key(s));
    return keys;
  }

  static FaultCommand command(FaultAction action) {
    FaultCommand c;
    c.action = action;
    return c;
  }
};

std::string broker_name(const ::testing::TestParamInfo<Broker>& info) {
  return std::string(to_string(info.param));
}

INSTANTIATE_TEST_SUITE_P(Brokers, FeedkitSim,
                         ::testing::Values(Broker::kis, Broker::kiwoom),
                         broker_name);

TEST_P(FeedkitSim, RestIssuesKeysOnlyForTheRightCredentials) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  const std::uint16_t port = sim->rest().port();
  const HttpResult wrong =
      http_post(port, rest_path(GetParam()),
                credentials_body("SIMAPPKEY", "not-the-secret"));
  EXPECT_TRUE(secret_of(GetParam(), wrong.body).empty()) << wrong.body;
  if (GetParam() == Broker::kis) {
    EXPECT_EQ(wrong.status, 403);
  } else {
    EXPECT_NE(wrong.body.find(R"("return_code":3)"), std::string::npos);
  }
  EXPECT_EQ(wrong.body.find("not-the-secret"), std::string::npos);
  EXPECT_EQ(http_post(port, "/nowhere", "{}").status, 404);
  EXPECT_EQ(sim->secrets_issued(), 0u);

  const HttpResult right =
      http_post(port, rest_path(GetParam()),
                credentials_body("SIMAPPKEY", "SIMSECRETKEY"));
  EXPECT_EQ(right.status, 200);
  const std::string secret = secret_of(GetParam(), right.body);
  EXPECT_FALSE(secret.empty()) << right.body;
  if (GetParam() == Broker::kiwoom) {
    EXPECT_NE(right.body.find(R"("expires_dt":")"), std::string::npos);
  }
  const HttpResult again =
      http_post(port, rest_path(GetParam()),
                credentials_body("SIMAPPKEY", "SIMSECRETKEY"));
  EXPECT_NE(secret_of(GetParam(), again.body), secret);  // a new one each time
  EXPECT_EQ(sim->secrets_issued(), 2u);
  // Secrets never reach the record.
  EXPECT_EQ(sim->report_jsonl().find(secret), std::string::npos);
}

TEST_P(FeedkitSim, RealtimeAcceptsOnlyIssuedKeys) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim, {.bogus_first_secret = true});
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  EXPECT_GE(feed.seen().auth_rejected, 1);  // the made-up key
  EXPECT_EQ(feed.rest_calls(), 1);          // then a real one
  EXPECT_EQ(sim->secrets_issued(), 1u);
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 5));
}

TEST_P(FeedkitSim, TradesAreContinuousAndAgreeWithTheRecordPerConnection) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim);
  feed.start(all_keys(*sim));
  ASSERT_TRUE(feed.wait_live(4));
  for (const auto& s : kSymbols) ASSERT_TRUE(feed.wait_trades(s, 60));
  EXPECT_GT(feed.multi_record_frames(), 0u);  // several records per frame

  sim->apply(command(FaultAction::close));
  ASSERT_TRUE(feed.wait([&] { return feed.gaps().size() == 1; }));
  ASSERT_TRUE(feed.wait_live(4));
  for (const auto& s : kSymbols) ASSERT_TRUE(feed.wait_trades(s, 30));
  feed.drain(kSymbols);

  feed.expect_continuous();
  feed.expect_agrees_with_record();
  const auto gaps = feed.gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, feedkit::GapReason::server_close);
  EXPECT_EQ(feed.unreadable_data(), 0u);
  // Every subscription confirmed again after the reconnect.
  EXPECT_EQ(feed.stats().subscriptions.confirmed, 4u);
}

TEST_P(FeedkitSim, KeptSubscriptionsAreAnsweredAlreadyAfterAReconnect) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  FaultCommand keep = command(FaultAction::keep_subscriptions);
  keep.on = true;
  sim->apply(keep);
  Feed feed(*sim, {.naive = true});  // resubscribes without unsubscribing
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 10));
  EXPECT_EQ(feed.seen().already, 0);

  sim->apply(command(FaultAction::close));
  ASSERT_TRUE(feed.wait([&] { return feed.gaps().size() == 1; }));
  ASSERT_TRUE(feed.wait_live(2));
  for (const auto& s : kSymbols) ASSERT_TRUE(feed.wait_trades(s, 10));
  if (GetParam() == Broker::kis) {
    // OPSP0002 for both keys, each a confirmation.
    EXPECT_EQ(feed.seen().already, 2);
    EXPECT_EQ(feed.stats().subscriptions.already_subscribed, 2u);
  } else {
    EXPECT_EQ(feed.seen().already, 0);  // Kiwoom answers a held key OK
    EXPECT_EQ(feed.seen().acks, 4);
  }
  feed.drain(kSymbols);
  feed.expect_continuous();
  feed.expect_agrees_with_record();
}

TEST_P(FeedkitSim, MaxSubscribeOverAtALowCap) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  FaultCommand cap = command(FaultAction::max_subscriptions);
  cap.count = 1;
  sim->apply(cap);
  Feed feed(*sim);
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait([&] { return feed.seen().max_subscriptions >= 1; }));
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 10) ||
              feed.wait_trades(kSymbols[1], 10));
  const WsClientStats stats = feed.stats();
  EXPECT_EQ(stats.subscriptions.confirmed, 1u);
  EXPECT_GE(stats.subscriptions.max_subscription_replies, 1u);
  // Data only for the one key held.
  std::set<std::string> symbols;
  for (const auto& [where, run] : feed.runs()) symbols.insert(where.second);
  EXPECT_EQ(symbols.size(), 1u);
}

TEST_P(FeedkitSim, SecondSessionOfTheAppKey) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed first(*sim);
  first.start(trade_keys(*sim));
  ASSERT_TRUE(first.wait_live(2));
  ASSERT_TRUE(first.wait_trades(kSymbols[0], 10));

  Feed second(*sim);
  second.start(trade_keys(*sim));
  if (GetParam() == Broker::kis) {
    // KIS refuses the newcomer (OPSP8996); the first session goes on.
    ASSERT_TRUE(second.wait([&] { return second.seen().busy >= 1; }));
    EXPECT_EQ(second.stats().subscriptions.confirmed, 0u);
    const std::uint64_t before = first.runs()[{1, kSymbols[0]}].trades;
    ASSERT_TRUE(first.wait_trades(kSymbols[0], before + 20));
    EXPECT_TRUE(first.gaps().empty());
    first.stop();  // the key is free again
    EXPECT_TRUE(second.wait_live(2));
  } else {
    // Kiwoom: the newcomer wins, the first session is kicked (R10001). (The
    // first client then comes back and kicks the second in turn: the
    // ping-pong of two deployments sharing a key.)
    ASSERT_TRUE(second.wait([&] { return second.lives() >= 1; }));
    EXPECT_TRUE(first.wait([&] { return first.seen().busy >= 1; }));
    EXPECT_TRUE(first.wait([&] { return !first.gaps().empty(); }) ||
                first.stats().disconnects() >= 1);
  }
  first.stop();
  second.stop();
  first.expect_continuous();
  second.expect_continuous();
}

TEST_P(FeedkitSim, AppKeyInUseForAWhileDelaysTheReconnect) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim);
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 10));

  FaultCommand in_use = command(FaultAction::appkey_in_use);
  in_use.duration = milliseconds(1500);
  const SteadyTime taken = SteadyClock::now();
  sim->apply(in_use);
  if (GetParam() == Broker::kis) sim->apply(command(FaultAction::close));
  ASSERT_TRUE(feed.wait([&] { return feed.seen().busy >= 1; }));
  // A new connection (an epoch, a gap) that cannot go live: KIS refuses its
  // subscribes, Kiwoom kicks it right after its login.
  ASSERT_TRUE(feed.wait([&] { return !feed.gaps().empty(); }));
  // Live again only once the other client is gone.
  ASSERT_TRUE(feed.wait_live(2));
  EXPECT_GE(SteadyClock::now() - taken, milliseconds(1450));
  const std::uint64_t data_epoch = feed.stats().epoch;
  ASSERT_TRUE(feed.wait([&] {
    auto runs = feed.runs();
    auto it = runs.find({data_epoch, kSymbols[0]});
    return it != runs.end() && it->second.trades >= 10;
  }));
  feed.drain(kSymbols);
  feed.expect_continuous();
  feed.expect_agrees_with_record();
}

TEST_P(FeedkitSim, ExpiredTokenEndsTheSessionAndAFreshOneIsIssued) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim);
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 10));
  EXPECT_EQ(sim->secrets_issued(), 1u);

  sim->apply(command(FaultAction::expire_token));
  // The cached key is refused on the next connection, so the client asks
  // for a fresh one and goes live with it.
  ASSERT_TRUE(feed.wait([&] { return feed.seen().auth_rejected >= 1; }));
  ASSERT_TRUE(feed.wait([&] { return sim->secrets_issued() == 2; }));
  ASSERT_TRUE(feed.wait_live(2));
  EXPECT_EQ(feed.rest_calls(), 2);
  if (GetParam() == Broker::kiwoom) {
    EXPECT_GE(feed.seen().notices, 1);  // the SYSTEM message before closing
  }
  const std::uint64_t epoch = feed.stats().epoch;
  ASSERT_TRUE(feed.wait([&] {
    auto runs = feed.runs();
    auto it = runs.find({epoch, kSymbols[0]});
    return it != runs.end() && it->second.trades >= 10;
  }));
  feed.drain(kSymbols);
  feed.expect_continuous();
  feed.expect_agrees_with_record();
}

TEST_P(FeedkitSim, StallLongerThanTheIdleTimeoutIsOneReconnect) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim, {.idle_timeout = milliseconds(600)});
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 10));

  FaultCommand stall = command(FaultAction::stall);
  stall.duration = seconds(5);  // the client gives up on it long before
  sim->apply(stall);
  ASSERT_TRUE(feed.wait([&] { return feed.gaps().size() == 1; }));
  EXPECT_EQ(feed.gaps()[0].reason, feedkit::GapReason::stall);
  ASSERT_TRUE(feed.wait_live(2));
  for (const auto& s : kSymbols) ASSERT_TRUE(feed.wait_trades(s, 10));
  feed.drain(kSymbols);
  feed.expect_continuous();
  feed.expect_agrees_with_record();
  EXPECT_EQ(feed.gaps().size(), 1u);
}

TEST_P(FeedkitSim, StallThatEndsBeforeTheIdleTimeoutLosesDataInsideTheEpoch) {
  // Why stall detection matters: the session resumes, the client never
  // reconnected, and the cumulative volume jumps within one connection.
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim, {.idle_timeout = seconds(10)});
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], 10));
  FaultCommand stall = command(FaultAction::stall);
  stall.duration = milliseconds(300);
  sim->apply(stall);
  ASSERT_TRUE(feed.wait([&] {
    auto runs = feed.runs();
    return runs[{1, kSymbols[0]}].breaks >= 1;
  }));
  EXPECT_TRUE(feed.gaps().empty());
}

TEST_P(FeedkitSim, BurstMultipliesTheRateForItsDuration) {
  auto sim = start_sim(/*trade_rate=*/40);
  ASSERT_TRUE(sim);
  Feed feed(*sim);
  feed.start({sim->trade_key(kSymbols[0])});
  ASSERT_TRUE(feed.wait_live(1));
  const auto published = [&] { return sim->trades_published(kSymbols[0]); };
  const std::uint64_t t0 = published();
  std::this_thread::sleep_for(seconds(1));  // measuring a rate: real time
  const std::uint64_t normal = published() - t0;
  FaultCommand burst = command(FaultAction::burst);
  burst.multiplier = 10;
  burst.duration = seconds(1);
  const std::uint64_t t1 = published();
  sim->apply(burst);
  std::this_thread::sleep_for(seconds(1));
  const std::uint64_t bursting = published() - t1;
  EXPECT_GE(bursting, 4 * normal) << "normal " << normal;
  EXPECT_LE(bursting, 15 * normal + 20) << "normal " << normal;
  // And back to normal afterwards.
  std::this_thread::sleep_for(milliseconds(200));
  const std::uint64_t t2 = published();
  std::this_thread::sleep_for(seconds(1));
  EXPECT_LE(published() - t2, 3 * normal);
  feed.drain({kSymbols[0]});
  feed.expect_continuous();
  feed.expect_agrees_with_record();
}

TEST_P(FeedkitSim, MalformedFramesAreCountedAndTheSessionKept) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  Feed feed(*sim);
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  FaultCommand malformed = command(FaultAction::malformed);
  malformed.count = 7;
  sim->apply(malformed);
  // Each is rejected either by the protocol or by the data reader.
  ASSERT_TRUE(feed.wait(
      [&] { return feed.seen().malformed + feed.unreadable_data() >= 7; }));
  EXPECT_EQ(feed.seen().malformed + feed.unreadable_data(), 7u);
  EXPECT_EQ(sim->server().connection_log(0).malformed_sent, 7u);
  const std::uint64_t before = feed.runs()[{1, kSymbols[0]}].trades;
  ASSERT_TRUE(feed.wait_trades(kSymbols[0], before + 10));
  EXPECT_TRUE(feed.gaps().empty());
  feed.expect_continuous();
}

TEST_P(FeedkitSim, PingsAreAnsweredAndCounted) {
  auto sim = start_sim(200, milliseconds(50), /*max_missed_pings=*/2);
  ASSERT_TRUE(sim);
  Feed feed(*sim);
  feed.start(trade_keys(*sim));
  ASSERT_TRUE(feed.wait_live(2));
  ASSERT_TRUE(sim->server().wait_for(
      [&] { return sim->server().connection_log(0).heartbeats_received >= 3; },
      kWait));
  EXPECT_GE(feed.seen().heartbeats, 3);
  EXPECT_GE(sim->server().connection_log(0).pings_sent, 3u);
  EXPECT_TRUE(feed.gaps().empty());  // answered: never closed
}

// --- The program ------------------------------------------------------------

std::string temp_dir() {
  std::string pattern = ::testing::TempDir() + "feedkit_sim_XXXXXX";
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// feedkit-sim run with `args`: stdout through a pipe, stderr to a file.
class Program {
 public:
  explicit Program(std::vector<std::string> args)
      : dir_(temp_dir()),
        process_(with_program(std::move(args)), {.stderr_path = stderr_path()}),
        out_(process_.stdout_fd()) {
    EXPECT_EQ(process_.spawn_error(), 0);
  }
  ~Program() { std::filesystem::remove_all(dir_); }

  // Returns the next stdout line ("" at the end or after `timeout`).
  std::string line(Duration timeout = kWait) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    while (true) {
      if (const std::size_t nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string l = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return l;
      }
      if (SteadyClock::now() >= deadline) return {};
      fd_set set;
      FD_ZERO(&set);
      FD_SET(out_, &set);
      timeval tv{0, 100'000};
      if (select(out_ + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(out_, chunk, sizeof(chunk));
      if (n <= 0) return {};
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Waits for the exit; returns the exit status, or -1 (killed, timeout).
  int wait_exit(Duration timeout = kWait) {
    return process_.wait_exit(timeout);
  }

  void signal(int sig) { process_.signal(sig); }
  std::string stderr_text() const { return read_file(stderr_path()); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  static std::vector<std::string> with_program(std::vector<std::string> args) {
    args.insert(args.begin(), FEEDKIT_SIM_PROGRAM);
    return args;
  }
  std::string stderr_path() const { return dir_ + "/stderr.txt"; }

  const std::string dir_;
  feedkit::testing::ChildProcess process_;
  const int out_;  // process_'s stdout pipe
  std::string buffer_;
};

TEST(FeedkitSimProgram, PrintsTheReadyLineAndWritesTheRecordOnSigterm) {
  const std::string dir = temp_dir();
  const std::string record = dir + "/sent.jsonl";
  Program sim({"--broker", "kis", "--port", "0", "--symbols", "005930,000660",
               "--rate", "50", "--record", record});
  const std::string ready = sim.line();
  json::Document doc;
  ASSERT_EQ(doc.parse(ready), json::JsonError::none) << ready;
  EXPECT_EQ(doc.root()["event"].plain_string(),
            std::optional<std::string_view>("ready"));
  const auto ws_port = doc.root()["ws_port"].integer();
  const auto rest_port = doc.root()["rest_port"].integer();
  ASSERT_TRUE(ws_port && rest_port) << ready;
  EXPECT_GT(*ws_port, 0);
  EXPECT_NE(ready.find("/tryitout"), std::string::npos);
  EXPECT_NE(ready.find(R"("trade_keys":["H0STCNT0|005930","H0STCNT0|000660"])"),
            std::string::npos)
      << ready;
  // The REST endpoint is up.
  const HttpResult r =
      http_post(static_cast<std::uint16_t>(*rest_port), "/oauth2/Approval",
                credentials_body("SIMAPPKEY", "SIMSECRETKEY"));
  EXPECT_FALSE(secret_of(Broker::kis, r.body).empty()) << r.body;

  sim.signal(SIGTERM);
  EXPECT_EQ(sim.line(), R"({"event":"stopped","reason":"SIGTERM"})");
  EXPECT_EQ(sim.wait_exit(), 0) << sim.stderr_text();
  const std::string text = read_file(record);
  EXPECT_NE(text.find(R"({"type":"summary","broker":"kis")"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("secrets_issued":1)"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST(FeedkitSimProgram, PlaysTheScriptAndEndsAtItsEnd) {
  const std::string dir = temp_dir();
  const std::string script = dir + "/faults.txt";
  std::ofstream(script) << "# compressed 20x\nat 2 malformed 1\nat 10 end\n";
  Program sim({"--broker", "kiwoom", "--script", script, "--speed", "20"});
  ASSERT_NE(sim.line().find(R"("event":"ready")"), std::string::npos);
  EXPECT_EQ(sim.line(), R"({"event":"stopped","reason":"end"})");
  EXPECT_EQ(sim.wait_exit(), 0);
  const std::string err = sim.stderr_text();
  EXPECT_NE(err.find("at 2 malformed 1"), std::string::npos) << err;
  EXPECT_NE(err.find("at 10 end"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

TEST(FeedkitSimProgram, StopsAfterTheDuration) {
  Program sim({"--broker", "kis", "--duration", "0.3"});
  ASSERT_NE(sim.line().find(R"("event":"ready")"), std::string::npos);
  EXPECT_EQ(sim.line(), R"({"event":"stopped","reason":"duration"})");
  EXPECT_EQ(sim.wait_exit(), 0);
}

struct BadFlags {
  std::vector<std::string> args;
  std::string message;
};

void PrintTo(const BadFlags& bad, std::ostream* os) {
  *os << "flags:";
  for (const std::string& a : bad.args) *os << " " << a;
}

class FeedkitSimBadFlags : public ::testing::TestWithParam<BadFlags> {};

TEST_P(FeedkitSimBadFlags, ExitTwoWithAClearMessage) {
  Program sim(GetParam().args);
  EXPECT_EQ(sim.wait_exit(), 2);
  const std::string err = sim.stderr_text();
  EXPECT_NE(err.find(GetParam().message), std::string::npos) << err;
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, FeedkitSimBadFlags,
    ::testing::Values(
        BadFlags{{}, "--broker is required"},
        BadFlags{{"--broker", "nasdaq"},
                 "--broker must be kis, kiwoom or settrade"},
        BadFlags{{"--broker", "settrade", "--book-rate", "0"},
                 "settrade publishes books only"},
        BadFlags{{"--broker", "kis", "--rate", "0"},
                 "--rate must be a number > 0"},
        BadFlags{{"--broker", "kis", "--port", "70000"},
                 "--port must be a port"},
        BadFlags{{"--broker", "kis", "--symbols", "00 59"},
                 "symbol \"00 59\" must be 1-12 letters or digits"},
        BadFlags{{"--broker", "kis", "--frobnicate", "1"},
                 "unknown flag --frobnicate"},
        BadFlags{{"--broker", "kis", "--start-time", "25:00:00"},
                 "--start-time must be HH:MM:SS"},
        BadFlags{{"--broker", "kis", "--script", "/nonexistent/faults.txt"},
                 "cannot read --script"},
        BadFlags{{"--broker"}, "--broker needs a value"}));

TEST(FeedkitSimProgram, BadScriptExitsTwoNamingTheLine) {
  const std::string dir = temp_dir();
  const std::string script = dir + "/faults.txt";
  std::ofstream(script) << "at 1 close\n\nat 3 stal 5\n";
  Program sim({"--broker", "kis", "--script", script});
  EXPECT_EQ(sim.wait_exit(), 2);
  const std::string err = sim.stderr_text();
  EXPECT_NE(err.find(script + ":3: unknown command \"stal\""),
            std::string::npos)
      << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace examples::sim
