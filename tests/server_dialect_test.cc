// ServerDialect and the FaultyWsServer features the simulated brokers build
// on, over real sockets: a dialect of the test's own (several records per
// frame, the secret carried in every subscribe, LOGIN first), the records
// per frame pattern, what the server logs it sent per connection, stalls that
// end, secrets that are revoked or expire, a second session of one account
// (refused, or kicking the first), the account held elsewhere for a while,
// heartbeat answers, and frames of every WebSocket length class.
//
// Test that header file is self-contained.
#include "feedkit/testing/server_dialect.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/line_protocol.h"

namespace feedkit::testing {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using namespace std::chrono_literals;

constexpr Duration kLong = std::chrono::seconds(10);
constexpr Duration kShort = std::chrono::milliseconds(200);

// A WebSocket client whose reads time out (a read that timed out stays
// pending, the stream stays usable).
class Client {
 public:
  explicit Client(std::uint16_t port) {
    ws_.next_layer().connect(
        net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws_.handshake("127.0.0.1", "/");
    ws_.text(true);
  }

  void send(const std::string& text) { ws_.write(net::buffer(text)); }
  void pong() { ws_.pong({}); }

  // Returns the next message, or nullopt after `timeout` or on an error
  // (closed() tells which).
  std::optional<std::string> read(Duration timeout = kLong) {
    if (!reading_) {
      reading_ = true;
      done_ = false;
      ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
        done_ = true;
        ec_ = ec;
      });
    }
    ioc_.restart();
    const SteadyTime deadline = SteadyClock::now() + timeout;
    while (!done_ && SteadyClock::now() < deadline) {
      ioc_.run_one_for(deadline - SteadyClock::now());
    }
    if (!done_) return std::nullopt;
    reading_ = false;
    if (ec_) return std::nullopt;
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    return text;
  }
  // Whether the last read ended with a close or a broken connection.
  bool closed() const { return done_ && ec_; }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_{ioc_};
  beast::flat_buffer buffer_;
  bool reading_ = false;
  bool done_ = false;
  beast::error_code ec_;
};

// LineProtocol's shape, but: "SUB <key> <secret>" carries the secret,
// "D <key> <first> <n>" holds up to 4 records, and LOGIN may be required.
class TestDialect final : public ServerDialect {
 public:
  explicit TestDialect(bool requires_login = false)
      : requires_login_(requires_login) {}

  ClientRequest read(std::string_view frame) override {
    ClientRequest r = line_.read(frame);
    if (r.kind == ClientRequest::Kind::subscribe) {
      const std::string words = r.keys[0];
      const std::size_t space = words.find(' ');
      r.keys[0] = words.substr(0, space);
      if (space != std::string::npos) r.secret = words.substr(space + 1);
    }
    return r;
  }
  bool requires_login() const override { return requires_login_; }
  std::string login_ok() override { return line_.login_ok(); }
  std::string login_failed() override { return line_.login_failed(); }
  std::string login_in_use() override { return line_.login_in_use(); }
  std::string kicked() override { return line_.kicked(); }
  std::string token_expired() override { return "EXPIRED"; }
  std::string ping(std::uint64_t n) override { return line_.ping(n); }
  std::string notice(std::string_view t) override { return line_.notice(t); }
  std::string subscribed(std::string_view k) override {
    return line_.subscribed(k);
  }
  std::string already(std::string_view k) override { return line_.already(k); }
  std::string max_subscriptions(std::string_view k) override {
    return line_.max_subscriptions(k);
  }
  std::string rejected(std::string_view k, std::string_view why) override {
    return line_.rejected(k, why);
  }
  std::string auth_failed(std::string_view k) override {
    return "DENIED " + std::string(k);
  }
  std::string in_use(std::string_view k) override {
    return "IN_USE " + std::string(k);
  }
  std::string unsubscribed(std::string_view k, bool held) override {
    return (held ? "UNACK " : "UNKNOWN ") + std::string(k);
  }
  std::size_t max_records_per_frame() const override { return 4; }
  void append_data(std::string& out, std::string_view key,
                   std::uint64_t first_seq, std::size_t records,
                   std::int64_t) override {
    out += "D ";
    out += key;
    out += " " + std::to_string(first_seq) + " " + std::to_string(records);
  }
  std::string malformed(std::size_t i) override { return line_.malformed(i); }

 private:
  LineDialect line_;
  bool requires_login_;
};

std::unique_ptr<FaultyWsServer> start_server(
    std::shared_ptr<ServerDialect> dialect = nullptr) {
  FaultyWsServerOptions options;
  options.dialect = std::move(dialect);
  auto server = FaultyWsServer::start(std::move(options));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

struct Records {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
};
// Reads "D <key> <first> <n>".
std::optional<Records> records_of(const std::optional<std::string>& frame) {
  if (!frame || frame->rfind("D ", 0) != 0) return std::nullopt;
  std::istringstream in(frame->substr(2));
  std::string key;
  Records r;
  in >> key >> r.first >> r.count;
  if (!in) return std::nullopt;
  return r;
}

// --- LineDialect -------------------------------------------------------------

TEST(LineDialect, ReadsEveryClientFrame) {
  LineDialect d;
  EXPECT_EQ(d.read("LOGIN s3cret").kind, ClientRequest::Kind::login);
  EXPECT_EQ(d.read("LOGIN s3cret").secret,
            std::optional<std::string>("s3cret"));
  EXPECT_EQ(d.read("LOGIN").secret, std::optional<std::string>(""));
  const ClientRequest sub = d.read("SUB A");
  EXPECT_EQ(sub.kind, ClientRequest::Kind::subscribe);
  EXPECT_EQ(sub.keys, std::vector<std::string>{"A"});
  EXPECT_FALSE(sub.secret.has_value());
  EXPECT_EQ(d.read("UNSUB A").kind, ClientRequest::Kind::unsubscribe);
  EXPECT_EQ(d.read("PONG 3").kind, ClientRequest::Kind::heartbeat);
  for (std::string_view other : {"SUB ", "UNSUB ", "HELLO", "", "LOGINX"}) {
    EXPECT_EQ(d.read(other).kind, ClientRequest::Kind::unknown) << other;
    EXPECT_TRUE(d.read(other).reply.empty());
  }
}

TEST(LineDialect, WritesWhatLineProtocolReads) {
  LineDialect d;
  LineProtocol p;
  EXPECT_EQ(p.classify(d.login_ok()).kind, FrameKind::login_ok);
  EXPECT_EQ(p.classify(d.login_failed()).kind, FrameKind::auth_rejected);
  EXPECT_EQ(p.classify(d.token_expired()).kind, FrameKind::auth_rejected);
  EXPECT_EQ(p.classify(d.login_in_use()).kind, FrameKind::busy);
  EXPECT_EQ(p.classify(d.in_use("A")).kind, FrameKind::busy);
  EXPECT_EQ(p.classify(d.kicked()).kind, FrameKind::notice);
  EXPECT_EQ(p.classify(d.subscribed("A")).key, "A");
  EXPECT_EQ(p.classify(d.subscribed("A")).kind, FrameKind::subscribe_ack);
  EXPECT_EQ(p.classify(d.already("A")).kind, FrameKind::already_subscribed);
  EXPECT_EQ(p.classify(d.max_subscriptions("A")).kind,
            FrameKind::max_subscriptions);
  const Classified reject = p.classify(d.rejected("A", "no such key"));
  EXPECT_EQ(reject.kind, FrameKind::subscribe_reject);
  EXPECT_EQ(reject.reason, "no such key");
  EXPECT_EQ(p.classify(d.unsubscribed("A", false)).kind,
            FrameKind::unsubscribe_ack);
  EXPECT_EQ(p.classify(d.ping(7)).reply, "PONG 7");
  EXPECT_EQ(p.classify(d.notice("hi")).reason, "hi");
  std::string data;
  d.append_data(data, "A", 42, 1, 123);
  const auto parsed = parse_line_data(data);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->seq, 42u);
  EXPECT_EQ(parse_sent_time(parsed->payload)->time_since_epoch(), 123ns);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(p.classify(d.malformed(i)).kind, FrameKind::malformed) << i;
  }
}

TEST(ServerDialect, DefaultRepliesAnswerEachKey) {
  LineDialect d;
  ClientRequest request;
  request.keys = {"A", "B", "C"};
  const std::vector<KeyOutcome> outcomes = {
      {"A", SubscribeOutcome::subscribed, {}},
      {"B", SubscribeOutcome::rejected, "why"},
      {"C", SubscribeOutcome::max_subscriptions, {}}};
  EXPECT_EQ(d.subscribe_replies(request, outcomes),
            (std::vector<std::string>{"ACK A", "REJECT B why", "MAXSUB C"}));
  EXPECT_EQ(d.unsubscribe_replies(request, {true, false, true}),
            (std::vector<std::string>{"UNACK A", "UNACK B", "UNACK C"}));
}

// --- FaultyWsServer with a dialect ------------------------------------------

TEST(FaultyWsServerDialect, FramesCarryRecordsByThePatternAndAreLogged) {
  auto server = start_server(std::make_shared<TestDialect>());
  ASSERT_TRUE(server);
  server->set_records_per_frame({1, 3, 9});  // 9 is clamped to 4
  Client client(server->port());
  client.send("SUB A");
  EXPECT_EQ(client.read(), "ACK A");
  server->stream("A", 2000, 12);  // records: 1 + 3 + 4 + 1 + 3 = 12
  std::uint64_t next = 1;
  std::vector<std::uint64_t> sizes;
  while (next <= 12) {
    const auto r = records_of(client.read());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first, next);
    sizes.push_back(r->count);
    next += r->count;
  }
  EXPECT_EQ(sizes, (std::vector<std::uint64_t>{1, 3, 4, 1, 3}));
  EXPECT_FALSE(client.read(kShort));  // count done
  const ConnectionLog log = server->connection_log(0);
  ASSERT_EQ(log.data.count("A"), 1u);
  EXPECT_EQ(log.data.at("A").frames, 5u);
  EXPECT_EQ(log.data.at("A").records, 12u);
  EXPECT_EQ(log.data.at("A").first_seq, 1u);
  EXPECT_EQ(log.data.at("A").last_seq, 12u);
  EXPECT_EQ(log.ended_at, SteadyTime::max());
  EXPECT_EQ(server->published("A"), 12u);
}

TEST(FaultyWsServerDialect, LogsPerConnectionWhatEachOneWasSent) {
  auto server = start_server();
  ASSERT_TRUE(server);
  {
    Client first(server->port());
    first.send("SUB A");
    EXPECT_EQ(first.read(), "ACK A");
    server->flood("A", 300);
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(first.read());
    server->reset_all();
  }
  Client second(server->port());
  second.send("SUB A");
  EXPECT_EQ(second.read(), "ACK A");
  server->flood("A", 5);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(second.read());
  const auto logs = server->connection_logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].data.at("A").first_seq, 1u);
  EXPECT_EQ(logs[0].data.at("A").last_seq, 300u);
  EXPECT_EQ(logs[0].data.at("A").frames, 300u);
  EXPECT_NE(logs[0].ended_at, SteadyTime::max());
  EXPECT_GE(logs[0].ended_at, logs[0].accepted_at);
  EXPECT_EQ(logs[1].data.at("A").first_seq, 301u);
  EXPECT_EQ(logs[1].data.at("A").records, 5u);
  EXPECT_TRUE(server->connection_log(7).data.empty());  // no such connection
}

TEST(FaultyWsServerDialect, FramesOfEveryLengthClassArriveWhole) {
  auto server = start_server();
  ASSERT_TRUE(server);
  Client client(server->port());
  for (std::size_t n : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
    server->send_text(std::string(n, 'x'));
    const auto frame = client.read();
    ASSERT_TRUE(frame) << n;
    EXPECT_EQ(frame->size(), n);
  }
}

TEST(FaultyWsServerDialect, StallThatEndsResumesWithASeqJump) {
  auto server = start_server();
  ASSERT_TRUE(server);
  Client client(server->port());
  client.send("SUB A");
  EXPECT_EQ(client.read(), "ACK A");
  server->stream("A", 500);
  ASSERT_TRUE(client.read());
  server->stall_all(300ms);
  std::uint64_t before = 0;  // the last seq before the silence
  while (auto frame = client.read(100ms)) {
    before = parse_line_data(*frame)->seq;
  }
  const auto after = client.read();  // sent again
  ASSERT_TRUE(after);
  const std::uint64_t resumed = parse_line_data(*after)->seq;
  EXPECT_GT(resumed, before + 50);  // ~150 published meanwhile, not sent
  server->stop_streams();
  // The log holds what was sent: the silence is a hole in it.
  const SentKeyLog log = server->connection_log(0).data.at("A");
  EXPECT_LT(log.records, log.last_seq - log.first_seq + 1);
}

TEST(FaultyWsServerDialect, RevokedSecretsCloseTheirSessionsAndAreRefused) {
  auto server = start_server(std::make_shared<TestDialect>());
  ASSERT_TRUE(server);
  server->add_accepted_secret("issued");
  server->add_accepted_secret("stale", SteadyClock::now() - 1s);
  Client stale(server->port());
  stale.send("LOGIN stale");
  EXPECT_EQ(stale.read(), "AUTH_FAIL");  // expired already
  Client live(server->port());
  live.send("LOGIN any");
  EXPECT_EQ(live.read(), "AUTH_FAIL");  // never issued
  live.send("LOGIN issued");
  EXPECT_EQ(live.read(), "LOGIN_OK");
  server->revoke_secrets();
  EXPECT_EQ(live.read(), "EXPIRED");
  EXPECT_FALSE(live.read());
  EXPECT_TRUE(live.closed());
  Client again(server->port());
  again.send("LOGIN issued");
  EXPECT_EQ(again.read(), "AUTH_FAIL");
  server->add_accepted_secret("fresh");
  again.send("LOGIN fresh");
  EXPECT_EQ(again.read(), "LOGIN_OK");
}

TEST(FaultyWsServerDialect, SecretInTheSubscribeIsChecked) {
  auto server = start_server(std::make_shared<TestDialect>());
  ASSERT_TRUE(server);
  server->set_accepted_secret("key1");
  Client client(server->port());
  client.send("SUB A wrong");
  EXPECT_EQ(client.read(), "DENIED A");
  client.send("SUB A key1");
  EXPECT_EQ(client.read(), "ACK A");
  client.send("UNSUB A");
  EXPECT_EQ(client.read(), "UNACK A");
  client.send("UNSUB A");
  EXPECT_EQ(client.read(), "UNKNOWN A");
}

TEST(FaultyWsServerDialect, LoginFirstWhenTheDialectRequiresIt) {
  auto server = start_server(std::make_shared<TestDialect>(true));
  ASSERT_TRUE(server);
  Client client(server->port());
  client.send("SUB A");
  EXPECT_EQ(client.read(), "DENIED A");
  client.send("LOGIN s");
  EXPECT_EQ(client.read(), "LOGIN_OK");
  client.send("SUB A");
  EXPECT_EQ(client.read(), "ACK A");
}

TEST(FaultyWsServerDialect, RejectNewcomerRefusesASecondSessionOfTheAccount) {
  auto server = start_server(std::make_shared<TestDialect>());
  ASSERT_TRUE(server);
  server->set_session_conflict(SessionConflict::reject_newcomer);
  auto first = std::make_unique<Client>(server->port());
  first->send("LOGIN s");
  EXPECT_EQ(first->read(), "LOGIN_OK");
  Client second(server->port());
  second.send("LOGIN s");
  EXPECT_EQ(second.read(), "BUSY");
  second.send("SUB A s");  // a secret-carrying subscribe claims too
  EXPECT_EQ(second.read(), "IN_USE A");
  first.reset();  // the holder leaves
  ASSERT_TRUE(
      server->wait_for([&] { return server->open_sessions() == 1; }, kLong));
  second.send("LOGIN s");
  EXPECT_EQ(second.read(), "LOGIN_OK");
}

TEST(FaultyWsServerDialect, KickIncumbentClosesTheFirstSession) {
  auto server = start_server();
  ASSERT_TRUE(server);
  server->set_session_conflict(SessionConflict::kick_incumbent);
  Client first(server->port());
  first.send("LOGIN s");
  EXPECT_EQ(first.read(), "LOGIN_OK");
  Client second(server->port());
  second.send("LOGIN s");
  EXPECT_EQ(second.read(), "LOGIN_OK");
  EXPECT_EQ(first.read(), "NOTICE kicked");
  EXPECT_FALSE(first.read());
  EXPECT_TRUE(first.closed());
  second.send("SUB A");
  EXPECT_EQ(second.read(), "ACK A");  // the newcomer goes on
}

TEST(FaultyWsServerDialect, OccupiedAccountRefusesLoginsForAWhile) {
  auto server = start_server();
  ASSERT_TRUE(server);
  Client open(server->port());
  open.send("LOGIN s");
  EXPECT_EQ(open.read(), "LOGIN_OK");
  server->occupy_account(400ms);
  const SteadyTime occupied = SteadyClock::now();
  Client late(server->port());
  late.send("LOGIN s");
  EXPECT_EQ(late.read(), "BUSY");
  open.send("SUB A");  // open sessions keep going
  EXPECT_EQ(open.read(), "ACK A");
  while (SteadyClock::now() - occupied < 450ms) {
    late.send("LOGIN s");
    if (late.read() == "LOGIN_OK") break;
  }
  EXPECT_GE(SteadyClock::now() - occupied, 400ms);
  late.send("LOGIN s");
  EXPECT_EQ(late.read(), "LOGIN_OK");
}

TEST(FaultyWsServerDialect, OccupiedAccountKicksWhenNewcomersWin) {
  auto server = start_server();
  ASSERT_TRUE(server);
  server->set_session_conflict(SessionConflict::kick_incumbent);
  Client open(server->port());
  open.send("LOGIN s");
  EXPECT_EQ(open.read(), "LOGIN_OK");
  server->occupy_account(10s);
  EXPECT_EQ(open.read(), "NOTICE kicked");  // the other client took it
  Client again(server->port());
  again.send("LOGIN s");
  EXPECT_EQ(again.read(), "LOGIN_OK");
  EXPECT_EQ(again.read(), "NOTICE kicked");  // and takes it back
  EXPECT_FALSE(again.read());
  EXPECT_TRUE(again.closed());
}

TEST(FaultyWsServerDialect, HeartbeatAnswersAreCountedTextOrPong) {
  auto server = start_server();
  ASSERT_TRUE(server);
  Client client(server->port());
  server->set_app_ping(30ms);
  EXPECT_EQ(client.read(), "PING 1");
  server->set_app_ping(Duration::zero());
  client.send("PONG 1");
  client.pong();
  ASSERT_TRUE(server->wait_for(
      [&] { return server->connection_log(0).heartbeats_received == 2; },
      kLong));
  EXPECT_GE(server->connection_log(0).pings_sent, 1u);
}

TEST(FaultyWsServerDialect, SessionThatStopsAnsweringPingsIsClosed) {
  auto server = start_server();
  ASSERT_TRUE(server);
  server->set_max_missed_pings(2);
  Client answering(server->port());
  Client silent(server->port());
  server->set_app_ping(20ms);
  for (int i = 1; i <= 5; ++i) {  // answered: kept
    const auto ping = answering.read();
    ASSERT_EQ(ping, "PING " + std::to_string(i));
    answering.send("PONG " + std::to_string(i));
  }
  EXPECT_EQ(silent.read(), "PING 1");
  EXPECT_EQ(silent.read(), "PING 2");
  EXPECT_FALSE(silent.read());  // closed when the third was due
  EXPECT_TRUE(silent.closed());
  EXPECT_EQ(server->connection_log(1).pings_sent, 2u);
  EXPECT_EQ(answering.read()->rfind("PING ", 0), 0u);  // still served
  server->set_app_ping(Duration::zero());
}

TEST(FaultyWsServerDialect, BurstMultipliesTheStreamRateThenEnds) {
  auto server = start_server();
  ASSERT_TRUE(server);
  server->stream("A", 100);
  std::this_thread::sleep_for(500ms);  // measuring a rate: real time
  const std::uint64_t t0 = server->published("A");
  server->burst(10, 500ms);
  std::this_thread::sleep_for(500ms);
  const std::uint64_t t1 = server->published("A");
  std::this_thread::sleep_for(500ms);
  const std::uint64_t t2 = server->published("A");
  server->stop_streams();
  EXPECT_GE(t1 - t0, 250u);  // ~500 at 10×, ~50 without
  EXPECT_LE(t2 - t1, 150u);  // back to ~50
}

}  // namespace
}  // namespace feedkit::testing
