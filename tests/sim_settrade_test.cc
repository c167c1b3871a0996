// feedkit-sim's Settrade engine (examples/sim/settrade_sim.h) on loopback:
// the REST login (ECDSA-signed) and dispatcher token, books over wss through
// a real mosquitto with the bearer, the per-session record against what a
// bare Paho subscriber got, and settrade_collector (a child process) against
// it through each fault: continuity of the book sequence number (ask level
// 10's quantity) within every epoch against that session's record, one gap
// line per outage, every topic again after each reconnect.
#include <gtest/gtest.h>

// Needs the protobuf codec in feedkit-sim and the collector program.
#if defined(FEEDKIT_SIM_SETTRADE) && defined(SETTRADE_COLLECTOR_PROGRAM)
#include <mqtt/async_client.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "common/json_reader.h"
#include "settrade/settrade_codec.h"
#include "sim/broker_sim.h"
#include "sim/settrade_sim.h"
#include "support/child_process.h"

namespace {

using examples::sim::Broker;
using examples::sim::BrokerSim;
using examples::sim::FaultAction;
using examples::sim::FaultCommand;
using feedkit::SteadyClock;
using feedkit::SteadyTime;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace json = examples::json;
namespace settrade = examples::settrade;

constexpr auto kWait = seconds(15);  // the most any condition may take
const std::vector<std::string> kSymbols = {"AOT", "PTT"};

std::unique_ptr<BrokerSim> start_sim(double book_rate = 20) {
  auto sim = BrokerSim::start({.broker = Broker::settrade,
                               .symbols = kSymbols,
                               .book_rate = book_rate,
                               .appkey = "SIMAPPID",
                               .secretkey = "c2ltLXNlY3JldC1rZXk"});
  EXPECT_TRUE(sim.ok()) << sim.status();
  return sim.ok() ? std::move(sim).value() : nullptr;
}

bool wait_until(const std::function<bool()>& condition,
                feedkit::Duration timeout = kWait) {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));  // real I/O elsewhere
  }
  return true;
}

struct Reply {
  int status = 0;
  std::string body;
};

Reply http(const std::string& base, const std::string& method,
           const std::string& target, const std::string& body = "",
           const std::string& authorization = "") {
  namespace beast = boost::beast;
  namespace http = beast::http;
  const std::string port = base.substr(base.rfind(':') + 1);
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(
      boost::asio::ip::tcp::resolver(ioc).resolve("127.0.0.1", port));
  http::request<http::string_body> req{http::string_to_verb(method), target,
                                       11};
  req.set(http::field::host, "127.0.0.1");
  if (!authorization.empty())
    req.set(http::field::authorization, authorization);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return {static_cast<int>(res.result_int()), res.body()};
}

std::string now_login_body(const std::string& app_id,
                           const std::string& secret) {
  const auto ms = std::chrono::duration_cast<milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return settrade::login_request_body(app_id, secret, "", ms).value();
}

const std::string kLogin = settrade::login_path("098", "SIMAPP");
const std::string kDispatcher = settrade::dispatcher_path("098");

// Logs in and returns the dispatcher token.
std::string dispatcher_token(BrokerSim& sim) {
  const Reply login = http(sim.rest_url(), "POST", kLogin,
                           now_login_body("SIMAPPID", "c2ltLXNlY3JldC1rZXk"));
  EXPECT_EQ(login.status, 200) << login.body;
  const auto access = settrade::parse_login_response(login.body).value();
  const Reply grant =
      http(sim.rest_url(), "GET", kDispatcher, "",
           settrade::authorization_header("Bearer", access.access_token));
  EXPECT_EQ(grant.status, 200) << grant.body;
  return settrade::parse_dispatcher_response(grant.body).value().token;
}

TEST(SettradeSim, RestRefusesBadCredentialsAndIssuesTokensForGoodOnes) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  const std::string base = sim->rest_url();
  // Wrong app id; a signature by another key; a stale timestamp.
  EXPECT_EQ(http(base, "POST", kLogin,
                 now_login_body("OTHERAPP", "c2ltLXNlY3JldC1rZXk"))
                .status,
            401);
  const Reply wrong_key =
      http(base, "POST", kLogin, now_login_body("SIMAPPID", "b3RoZXIta2V5"));
  EXPECT_EQ(wrong_key.status, 401);
  EXPECT_NE(wrong_key.body.find("signature"), std::string::npos);
  EXPECT_EQ(http(base, "POST", kLogin,
                 settrade::login_request_body("SIMAPPID", "c2ltLXNlY3JldC1rZXk",
                                              "", 1000)
                     .value())
                .status,
            401);
  EXPECT_EQ(sim->secrets_issued(), 0u);
  // The dispatcher wants a valid access token.
  EXPECT_EQ(http(base, "GET", kDispatcher).status, 401);
  EXPECT_EQ(http(base, "GET", kDispatcher, "", "Bearer nope").status, 401);
  const std::string token = dispatcher_token(*sim);
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(sim->secrets_issued(), 2u);  // access + dispatcher
  // expire_token voids the access tokens too.
  const Reply login = http(base, "POST", kLogin,
                           now_login_body("SIMAPPID", "c2ltLXNlY3JldC1rZXk"));
  const auto access = settrade::parse_login_response(login.body).value();
  EXPECT_GT(access.expires_in, 0);
  sim->apply({.action = FaultAction::expire_token});
  EXPECT_EQ(http(base, "GET", kDispatcher, "", "Bearer " + access.access_token)
                .status,
            401);
  EXPECT_NE(dispatcher_token(*sim), token);
}

TEST(SettradeSim, ScriptCommandsWithoutMqttMeaningAreRejected) {
  auto commands =
      examples::sim::parse_fault_script("at 1 close\nat 2 appkey_in_use 3\n");
  ASSERT_TRUE(commands.ok());
  const absl::Status s =
      examples::sim::check_settrade_script(*commands, "incident.txt");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("incident.txt:2: appkey_in_use"),
            std::string::npos)
      << s;
}

// A bare Paho subscriber over wss.
struct Subscriber {
  explicit Subscriber(const std::string& url)
      : client(url, "settrade-sim-test") {
    client.start_consuming();
  }
  bool connect(const std::string& authorization, const std::string& ca) {
    auto options = mqtt::connect_options_builder()
                       .mqtt_version(MQTTVERSION_3_1_1)
                       .clean_session(true)
                       .connect_timeout(kWait)
                       .finalize();
    options.set_http_headers({{"Authorization", authorization}});
    options.set_ssl(mqtt::ssl_options_builder()
                        .trust_store(ca)
                        .enable_server_cert_auth(true)
                        .verify(true)
                        .finalize());
    try {
      return client.connect(options)->wait_for(kWait);
    } catch (const mqtt::exception&) {
      return false;
    }
  }
  mqtt::async_client client;
};

std::uint64_t seq_of(const examples::Book& book) {
  return static_cast<std::uint64_t>(book.asks[9].quantity);
}

TEST(SettradeSim, BooksFlowOverWssWithTheBearerAndMatchTheRecord) {
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  const std::string ca = sim->settrade()->ca_file();
  {
    Subscriber refused(sim->ws_url());
    EXPECT_FALSE(refused.connect("Bearer wrong", ca));
  }
  Subscriber sub(sim->ws_url());
  ASSERT_TRUE(sub.connect("Bearer " + dispatcher_token(*sim), ca));
  for (const auto& s : kSymbols) {
    ASSERT_TRUE(
        sub.client.subscribe(settrade::bid_offer_topic(s), 0)->wait_for(kWait));
  }
  auto codec = settrade::SettradeCodec::create().value();
  std::map<std::string, std::vector<std::uint64_t>> seqs;
  std::vector<examples::MarketEvent> events;
  const SteadyTime deadline = SteadyClock::now() + kWait;
  while (seqs["AOT"].size() < 20 || seqs["PTT"].size() < 20) {
    mqtt::const_message_ptr msg;
    ASSERT_TRUE(sub.client.try_consume_message_until(&msg, deadline));
    if (!msg) continue;
    events.clear();
    ASSERT_TRUE(
        codec.decode_bid_offer(msg->get_topic(), msg->to_string(), events)
            .ok());
    const auto& book = std::get<examples::Book>(events.at(0));
    seqs[std::string(book.symbol.view())].push_back(seq_of(book));
    // Omitted zero fields decode as zero: empty deep bid levels.
    if (seq_of(book) % 3 == 0) {
      EXPECT_TRUE(book.bids[9].price.is_zero());
    }
  }
  sub.client.disconnect()->wait_for(kWait);
  ASSERT_TRUE(wait_until([&] {
    const auto logs = sim->report();
    return !logs.empty() &&
           sim->report_jsonl().find("closed_s") != std::string::npos;
  }));
  const auto record = sim->report();
  ASSERT_EQ(record.size(), kSymbols.size());  // one connection, two topics
  for (const auto& r : record) {
    SCOPED_TRACE(r.key);
    EXPECT_EQ(r.connection, 0u);
    const auto& got = seqs[r.symbol];
    for (std::size_t i = 1; i < got.size(); ++i)
      EXPECT_EQ(got[i], got[i - 1] + 1);
    EXPECT_EQ(r.first_seq, got.front());
    EXPECT_GE(r.last_seq, got.back());
    EXPECT_EQ(r.records, r.last_seq - r.first_seq + 1);
    EXPECT_LE(r.last_seq, sim->settrade()->books_published(r.symbol));
  }
}

// --- settrade_collector against the sim ---

std::string temp_dir() {
  std::string pattern = ::testing::TempDir() + "settrade_sim_XXXXXX";
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

// settrade_collector against `sim`: JSON Lines to out.jsonl, stderr to
// stderr.txt in `dir`.
class Collector {
 public:
  Collector(BrokerSim& sim, const std::string& dir)
      : out_(dir + "/out.jsonl"),
        process_({SETTRADE_COLLECTOR_PROGRAM, "--symbols", "AOT,PTT", "--out",
                  out_, "--quiet", "--broker-id", "098", "--app-code", "SIMAPP",
                  "--rest-url", sim.rest_url(), "--ws-url", sim.ws_url(),
                  "--ca-file", sim.settrade()->ca_file(), "--keepalive-s", "2"},
                 {.stderr_path = dir + "/stderr.txt",
                  .env = {"SETTRADE_APP_ID=SIMAPPID",
                          "SETTRADE_APP_SECRET=c2ltLXNlY3JldC1rZXk"}}) {
    EXPECT_EQ(process_.spawn_error(), 0);
  }
  // SIGTERM; returns the exit status (-1: killed or timeout).
  int stop() {
    process_.signal(SIGTERM);
    return process_.wait_exit(kWait);
  }
  std::vector<std::string> lines() const {
    std::ifstream in(out_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

 private:
  const std::string out_;
  feedkit::testing::ChildProcess process_;
};

// What the collector wrote, per epoch (in order of first appearance).
struct Epoch {
  std::uint64_t epoch = 0;
  std::map<std::string, std::vector<std::uint64_t>> seqs{};  // by symbol
};
struct Output {
  std::vector<Epoch> epochs;
  std::size_t gaps = 0;
  std::vector<std::string> gap_reasons;
};

Output read_output(const std::vector<std::string>& lines) {
  Output out;
  for (const std::string& line : lines) {
    json::Document doc;
    if (doc.parse(line) != json::JsonError::none) continue;
    const json::Value root = doc.root();
    const auto type = root["type"].decoded_string();
    if (type == "gap") {
      ++out.gaps;
      out.gap_reasons.push_back(root["reason"].decoded_string().value_or(""));
    }
    if (type != "book") continue;
    const auto epoch = static_cast<std::uint64_t>(*root["epoch"].integer());
    if (out.epochs.empty() || out.epochs.back().epoch != epoch) {
      out.epochs.push_back({.epoch = epoch});
    }
    const json::Value asks = root["asks"];
    std::uint64_t seq = 0;
    for (json::Value level : asks.elements()) {  // the last: level 10
      std::size_t i = 0;
      for (json::Value v : level.elements()) {
        if (i++ == 1) seq = static_cast<std::uint64_t>(v.integer().value_or(0));
      }
    }
    out.epochs.back().seqs[*root["symbol"].decoded_string()].push_back(seq);
  }
  return out;
}

struct Fault {
  const char* name;
  FaultCommand command;
  std::size_t connections;           // expected sessions
  const char* gap_reason = nullptr;  // of the gap line; nullptr: not checked
};
void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

class CollectorAgainstSim : public ::testing::TestWithParam<Fault> {};

// Books of both symbols in the newest epoch of the output (>= `epochs`).
bool has_books(const Collector& c, std::size_t epochs, std::size_t books) {
  const Output out = read_output(c.lines());
  if (out.epochs.size() < epochs) return false;
  for (const auto& s : kSymbols) {
    auto it = out.epochs.back().seqs.find(s);
    if (it == out.epochs.back().seqs.end() || it->second.size() < books) {
      return false;
    }
  }
  return true;
}

TEST_P(CollectorAgainstSim, ContinuousPerEpochOneGapPerOutage) {
  const Fault& fault = GetParam();
  auto sim = start_sim();
  ASSERT_TRUE(sim);
  const std::string dir = temp_dir();
  Collector collector(*sim, dir);
  ASSERT_TRUE(wait_until([&] { return has_books(collector, 1, 10); }))
      << "no books; collector stderr in " << dir;
  const std::uint64_t before = sim->settrade()->books_published("AOT");
  const SteadyTime applied = SteadyClock::now();
  sim->apply(fault.command);
  if (fault.command.action == FaultAction::burst) {  // 5 × 20/s for 1 s
    ASSERT_TRUE(wait_until([&] {
      return sim->settrade()->books_published("AOT") >= before + 60;
    }));
    EXPECT_LT(SteadyClock::now() - applied, milliseconds(2500))
        << "60 books take 3 s at the normal rate";
  }
  // Books published after the fault, one per symbol: what the fault sent
  // (malformed payloads, on the same topics) has reached the collector once
  // a later book has.
  std::map<std::string, std::uint64_t> published_by_then;
  for (const auto& symbol : kSymbols) {
    published_by_then[symbol] = sim->settrade()->books_published(symbol);
  }
  auto has_later_books = [&] {
    const Output out = read_output(collector.lines());
    if (out.epochs.empty()) return false;
    for (const auto& [symbol, published] : published_by_then) {
      auto it = out.epochs.back().seqs.find(symbol);
      if (it == out.epochs.back().seqs.end() || it->second.empty() ||
          it->second.back() <= published) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(wait_until([&] {
    return has_books(collector, fault.connections, 10) &&
           sim->report_jsonl().find("\"connections\":" +
                                    std::to_string(fault.connections)) !=
               std::string::npos &&
           has_later_books();
  })) << "no recovery; collector stderr in "
      << dir;
  ASSERT_EQ(collector.stop(), 0);

  const Output out = read_output(collector.lines());
  const auto record = sim->report();
  ASSERT_EQ(out.epochs.size(), fault.connections);
  EXPECT_EQ(out.gaps, fault.connections - 1);
  if (fault.gap_reason != nullptr) {
    EXPECT_EQ(out.gap_reasons, std::vector<std::string>{fault.gap_reason});
  }
  for (std::size_t c = 0; c < out.epochs.size(); ++c) {
    const Epoch& e = out.epochs[c];
    ASSERT_EQ(e.seqs.size(), kSymbols.size()) << "epoch " << e.epoch;
    for (const auto& [symbol, got] : e.seqs) {
      SCOPED_TRACE(symbol + " connection " + std::to_string(c));
      for (std::size_t i = 1; i < got.size(); ++i) {
        ASSERT_EQ(got[i], got[i - 1] + 1) << "at " << i;
      }
      bool found = false;
      for (const auto& r : record) {
        if (r.connection != c || r.symbol != symbol) continue;
        found = true;
        EXPECT_EQ(got.front(), r.first_seq);
        EXPECT_LE(got.back(), r.last_seq);
        EXPECT_EQ(r.records, r.last_seq - r.first_seq + 1);
      }
      EXPECT_TRUE(found);
    }
    if (c > 0) {  // the outage lost books: the next session starts later
      EXPECT_GT(e.seqs.at("AOT").front(),
                out.epochs[c - 1].seqs.at("AOT").back());
    }
  }
  if (fault.command.action == FaultAction::malformed) {
    EXPECT_NE(sim->report_jsonl().find("\"malformed_sent\":6"),
              std::string::npos);
    std::ifstream err(dir + "/stderr.txt");
    std::stringstream text;
    text << err.rdbuf();
    EXPECT_NE(text.str().find("rejected_frames=6"), std::string::npos)
        << text.str();
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, CollectorAgainstSim,
    ::testing::Values(
        Fault{"close", {.action = FaultAction::close}, 2},
        Fault{"reset", {.action = FaultAction::reset}, 2},
        Fault{"stall",
              {.action = FaultAction::stall, .duration = seconds(6)},
              2,
              "stall"},
        Fault{"expire_token", {.action = FaultAction::expire_token}, 2},
        Fault{"burst",
              {.action = FaultAction::burst,
               .duration = seconds(1),
               .multiplier = 5},
              1},
        Fault{"malformed", {.action = FaultAction::malformed, .count = 6}, 1}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace

#endif  // FEEDKIT_SIM_SETTRADE && SETTRADE_COLLECTOR_PROGRAM
