// Test that header file is self-contained.
#include "feedkit/testing/mosquitto_broker.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

namespace feedkit::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kLong = 10s;  // anything that should happen does by then

// Blocks until `condition` holds or `timeout` passes; returns whether it held.
// For conditions on another process (there is no event to wait on).
bool eventually(const std::function<bool()>& condition,
                Duration timeout = kLong) {
  const SteadyTime deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A Paho C++ client with blocking helpers that never wait forever.
class TestClient {
 public:
  explicit TestClient(const std::string& url)
      : client_(url, "feedkit-test-" + std::to_string(::getpid()) + "-" +
                         std::to_string(next_id_++)) {
    client_.set_connection_lost_handler(
        [this](const std::string&) { lost_ = true; });
    client_.start_consuming();
  }
  ~TestClient() {
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(2s);
    } catch (const mqtt::exception&) {
    }
  }

  // Returns 0 once connected, the failure's return code (5: CONNACK "not
  // authorised"), or -1 if nothing happened within kLong.
  int connect(const std::string& user = "", const std::string& password = "") {
    auto options = mqtt::connect_options_builder()
                       .clean_session(true)
                       .connect_timeout(kLong)
                       .finalize();
    if (!user.empty()) {
      options.set_user_name(user);
      options.set_password(password);
    }
    return result_of(client_.connect(options));
  }

  // Returns the granted QoS, the SUBACK failure code (0x80), or -1.
  int subscribe(const std::string& filter, int qos = 0) {
    mqtt::token_ptr token = client_.subscribe(filter, qos);
    const int rc = result_of(token);
    if (rc != 0) return rc;
    const auto codes = token->get_subscribe_response().get_reason_codes();
    return codes.empty() ? -1 : static_cast<int>(codes[0]);
  }

  // Returns 0 once the broker acknowledged the message (QoS 1), the failure's
  // return code, or -1.
  int publish(const std::string& topic, const std::string& payload) {
    try {
      return result_of(
          client_.publish(topic, payload.data(), payload.size(), 1, false));
    } catch (const mqtt::exception& e) {  // not connected
      return e.get_return_code();
    }
  }

  // Returns the next message's "topic payload", or nullopt after `timeout`.
  // (Paho queues an empty message when the connection is lost: skipped.)
  std::optional<std::string> receive(Duration timeout = kLong) {
    const SteadyTime deadline = SteadyClock::now() + timeout;
    mqtt::const_message_ptr msg;
    while (client_.try_consume_message_until(&msg, deadline)) {
      if (msg) return msg->get_topic() + " " + msg->to_string();
    }
    return std::nullopt;
  }

  bool lost() const { return lost_; }

 private:
  static int result_of(const mqtt::token_ptr& token) {
    try {
      return token->wait_for(kLong) ? 0 : -1;
    } catch (const mqtt::exception& e) {
      return e.get_return_code();
    }
  }

  static inline std::atomic<int> next_id_{0};
  mqtt::async_client client_;
  std::atomic<bool> lost_{false};
};

// Returns the errno of a TCP connect to 127.0.0.1:`port` (0: connected).
int connect_errno(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const int rc =
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int error = rc == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

// A listening socket on 127.0.0.1:`port`, closed by the destructor.
class Listener {
 public:
  explicit Listener(std::uint16_t port)
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 1) == 0;
  }
  ~Listener() { ::close(fd_); }
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

bool process_exists(int pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Returns true if a TCP socket with local port `port` is in TIME_WAIT.
bool time_wait_on_port(std::uint16_t port) {
  std::istringstream table(read_file("/proc/net/tcp"));
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    const auto colon = local.find(':');
    if (colon == std::string::npos) continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port &&
        state == "06") {
      return true;
    }
  }
  return false;
}

TEST(MosquittoBroker, AnonymousClientsPublishAndSubscribe) {
  auto broker = MosquittoBroker::start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_EQ((*broker)->url(),
            "tcp://127.0.0.1:" + std::to_string((*broker)->port()));
  EXPECT_NE((*broker)->pid(), 0);

  TestClient subscriber((*broker)->url());
  TestClient publisher((*broker)->url());
  ASSERT_EQ(subscriber.connect(), 0) << (*broker)->log_tail();
  ASSERT_EQ(publisher.connect(), 0);
  ASSERT_EQ(subscriber.subscribe("prices/#"), 0);
  publisher.publish("prices/PTT", "34.25");
  EXPECT_EQ(subscriber.receive(), "prices/PTT 34.25");
}

TEST(MosquittoBroker, WrongPasswordIsRefusedNotAuthorised) {
  auto broker = MosquittoBroker::start(
      {.users = {{.name = "alice", .password = "right horse"}}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string url = (*broker)->url();

  EXPECT_EQ(TestClient(url).connect("alice", "wrong horse"), 5)
      << (*broker)->log_tail();
  EXPECT_EQ(TestClient(url).connect("mallory", "right horse"), 5);
  EXPECT_EQ(TestClient(url).connect(), 5);  // anonymous
  EXPECT_EQ(TestClient(url).connect("alice", "right horse"), 0);
}

TEST(MosquittoBroker, SubscriptionOutsideTheUsersTopicsGetsSubackFailure) {
  auto broker = MosquittoBroker::start(
      {.users = {{.name = "alice",
                  .password = "a",
                  .topics = {{.filter = "prices/#", .publish = false},
                             {.filter = "alice/+"}}},
                 {.name = "admin", .password = "b"}}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  TestClient alice((*broker)->url());
  TestClient admin((*broker)->url());
  ASSERT_EQ(alice.connect("alice", "a"), 0);
  ASSERT_EQ(admin.connect("admin", "b"), 0);

  EXPECT_EQ(alice.subscribe("prices/PTT"), 0);
  EXPECT_EQ(alice.subscribe("alice/inbox", 1), 1);
  EXPECT_EQ(alice.subscribe("orders/PTT"), 0x80);
  EXPECT_EQ(alice.subscribe("#"), 0x80);  // wider than she may read
  ASSERT_EQ(admin.subscribe("#"), 0);     // no rules: everything

  // A publish alice may not make is dropped; the next one arrives first.
  EXPECT_EQ(alice.publish("prices/PTT", "forged"), 0);  // acknowledged, dropped
  EXPECT_EQ(alice.publish("alice/outbox", "ok"), 0);
  EXPECT_EQ(admin.receive(), "alice/outbox ok");
}

TEST(MosquittoBroker, KillDropsConnectionsAndRestartServesTheSamePort) {
  auto started = MosquittoBroker::start();
  ASSERT_TRUE(started.ok()) << started.status();
  MosquittoBroker& broker = **started;
  const std::uint16_t port = broker.port();
  const int first_pid = broker.pid();

  TestClient client(broker.url());
  ASSERT_EQ(client.connect(), 0);
  broker.kill();
  EXPECT_EQ(broker.pid(), 0);
  EXPECT_FALSE(process_exists(first_pid));
  EXPECT_TRUE(eventually([&] { return client.lost(); }));
  EXPECT_EQ(connect_errno(port), ECONNREFUSED);

  ASSERT_TRUE(broker.restart().ok()) << broker.log_tail();
  EXPECT_EQ(broker.port(), port);
  EXPECT_NE(broker.pid(), 0);
  EXPECT_NE(broker.pid(), first_pid);
  ASSERT_EQ(client.connect(), 0);
  ASSERT_EQ(client.subscribe("t"), 0);
  client.publish("t", "after restart");
  EXPECT_EQ(client.receive(), "t after restart");
}

TEST(MosquittoBroker, RestartsWhileItsPortHasConnectionsInTimeWait) {
  auto started = MosquittoBroker::start();
  ASSERT_TRUE(started.ok()) << started.status();
  MosquittoBroker& broker = **started;
  // A raw TCP connection the broker accepted; the broker's side closes first
  // when it is killed, so that side ends in TIME_WAIT on the broker's port.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(broker.port());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string accepted =
      "New connection from 127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ASSERT_TRUE(eventually([&] {
    return read_file(broker.log_path()).find(accepted) != std::string::npos;
  })) << broker.log_tail();
  broker.kill();
  char byte;
  EXPECT_EQ(::read(fd, &byte, 1), 0);  // EOF
  ::close(fd);
  ASSERT_TRUE(eventually([&] { return time_wait_on_port(broker.port()); }))
      << "no TIME_WAIT socket on port " << broker.port();

  ASSERT_TRUE(broker.restart().ok()) << broker.log_tail();
  EXPECT_EQ(TestClient(broker.url()).connect(), 0);
}

TEST(MosquittoBroker, PreparedBrokerRefusesConnectionsUntilRestarted) {
  auto prepared = MosquittoBroker::prepare();
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  MosquittoBroker& broker = **prepared;
  EXPECT_EQ(broker.pid(), 0);
  EXPECT_EQ(connect_errno(broker.port()), ECONNREFUSED);
  EXPECT_NE(TestClient(broker.url()).connect(), 0);

  ASSERT_TRUE(broker.restart().ok()) << broker.log_tail();
  EXPECT_EQ(TestClient(broker.url()).connect(), 0);
}

TEST(MosquittoBroker, RestartFailsClearlyWhileThePortIsTaken) {
  auto started = MosquittoBroker::start();
  ASSERT_TRUE(started.ok()) << started.status();
  MosquittoBroker& broker = **started;
  broker.kill();
  {
    Listener taken(broker.port());
    ASSERT_TRUE(taken.ok());
    const absl::Status s = broker.restart();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(s.message().find("Address already in use"),
              absl::string_view::npos)
        << s;
    EXPECT_EQ(broker.pid(), 0);
  }
  ASSERT_TRUE(broker.restart().ok()) << broker.log_tail();
  EXPECT_EQ(TestClient(broker.url()).connect(), 0);
}

// mosquitto dies with the thread that forked it (PR_SET_PDEATHSIG): that
// must be the broker's own thread, not the caller's.
TEST(MosquittoBroker, OutlivesTheThreadThatStartedIt) {
  std::unique_ptr<MosquittoBroker> broker;
  std::thread([&] {
    auto started = MosquittoBroker::start();
    ASSERT_TRUE(started.ok()) << started.status();
    broker = *std::move(started);
  }).join();
  ASSERT_NE(broker, nullptr);
  EXPECT_EQ(TestClient(broker->url()).connect(), 0);
  EXPECT_TRUE(broker->running());
}

TEST(MosquittoBroker, StopIsGraceful) {
  auto started = MosquittoBroker::start();
  ASSERT_TRUE(started.ok()) << started.status();
  MosquittoBroker& broker = **started;
  const int pid = broker.pid();
  broker.stop();
  EXPECT_EQ(broker.pid(), 0);
  EXPECT_FALSE(process_exists(pid));
  EXPECT_NE(read_file(broker.log_path()).find("terminating"), std::string::npos)
      << broker.log_tail();
}

TEST(MosquittoBroker, NoticesMosquittoExitingByItself) {
  auto started = MosquittoBroker::start();
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(::kill((*started)->pid(), SIGKILL), 0);
  EXPECT_TRUE(eventually([&] { return !(*started)->running(); }));
}

TEST(MosquittoBroker, DestructorKillsMosquittoAndRemovesItsDirectory) {
  auto started = MosquittoBroker::start();
  ASSERT_TRUE(started.ok()) << started.status();
  const int pid = (*started)->pid();
  const std::string dir = (*started)->dir();
  ASSERT_TRUE(std::filesystem::exists(dir));
  started->reset();
  EXPECT_FALSE(process_exists(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(MosquittoBroker, PasswordsAppearInNoFile) {
  const std::string password = "correct-horse-battery-staple";
  auto broker = MosquittoBroker::start(
      {.users = {{.name = "alice", .password = password}}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_EQ(TestClient((*broker)->url()).connect("alice", "wrong"), 5);
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator((*broker)->dir())) {
    ++files;
    EXPECT_EQ(read_file(entry.path()).find(password), std::string::npos)
        << entry.path();
  }
  EXPECT_GE(files, 3);  // config, users, log
}

TEST(MosquittoBroker, OversizedPacketDisconnectsTheClient) {
  auto broker = MosquittoBroker::start({.max_packet_size = 1000});
  ASSERT_TRUE(broker.ok()) << broker.status();
  TestClient client((*broker)->url());
  ASSERT_EQ(client.connect(), 0);
  ASSERT_EQ(client.subscribe("t"), 0);
  client.publish("t", std::string(500, 'x'));
  EXPECT_EQ(client.receive(), "t " + std::string(500, 'x'));
  EXPECT_NE(client.publish("t", std::string(2000, 'x')), 0);
  EXPECT_TRUE(eventually([&] { return client.lost(); }))
      << (*broker)->log_tail();
}

TEST(MosquittoBroker, BadConfigFailsWithTheLogTail) {
  auto broker = MosquittoBroker::start({.extra_config = {"no_such_option 1"}});
  ASSERT_FALSE(broker.ok());
  EXPECT_EQ(broker.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(broker.status().message().find("no_such_option"),
            absl::string_view::npos)
      << broker.status();
}

TEST(MosquittoBroker, MissingBinaryIsNotFound) {
  auto broker = MosquittoBroker::start({.binary = "/nonexistent/mosquitto"});
  ASSERT_FALSE(broker.ok());
  EXPECT_EQ(broker.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(broker.status().message().find("/nonexistent/mosquitto"),
            absl::string_view::npos);
}

TEST(MosquittoBroker, InvalidOptionsNameTheField) {
  const auto message = [](MosquittoBrokerOptions options) {
    const absl::Status s = options.validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  EXPECT_NE(message({.users = {{.name = ""}}}).find("users[0].name"),
            std::string::npos);
  EXPECT_NE(
      message({.users = {{.name = "a"}, {.name = "a"}}}).find("users[1].name"),
      std::string::npos);
  EXPECT_NE(message({.users = {{.name = "a", .topics = {{.filter = "a/#/b"}}}}})
                .find("users[0].topics[0].filter"),
            std::string::npos);
  EXPECT_NE(message({.users = {{.name = "a", .topics = {{.filter = "a+"}}}}})
                .find("\"a+\""),
            std::string::npos);
  EXPECT_NE(message({.extra_config = {"a\nb"}}).find("extra_config[0]"),
            std::string::npos);
  EXPECT_NE(message({.start_timeout = Duration::zero()}).find("start_timeout"),
            std::string::npos);
  auto broker = MosquittoBroker::start({.users = {{.name = "bad\tname"}}});
  EXPECT_EQ(broker.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((MosquittoBrokerOptions{.users = {{.name = "a",
                                                 .topics = {{.filter = "+/x/#"},
                                                            {.filter = "#"}}}}})
                  .validate()
                  .ok());
}

}  // namespace
}  // namespace feedkit::testing
