// SPDX-License-Identifier: Apache-2.0
#include "sim/settrade_sim.h"

#include <stdlib.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json_reader.h"
#include "feedkit/testing/mosquitto_broker.h"
#include "feedkit/testing/tcp_fault_proxy.h"
#include "feedkit/testing/test_certificate.h"
#include "feedkit/testing/ws_tcp_bridge.h"
#include "settrade/settrade_codec.h"
#include "settrade_realtime.pb.h"
#include "sim/broker_sim.h"

namespace examples::sim {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using feedkit::Duration;
using feedkit::SteadyClock;
using feedkit::SteadyTime;
using feedkit::testing::ConnectionLog;
using feedkit::testing::HttpRequest;
using feedkit::testing::HttpResponse;

constexpr std::string_view kBrokerId = "098";  // SANDBOX's, in the URL
// How far a login's timestamp may be from the sim's clock.
constexpr std::int64_t kMaxClockSkewMs = 5 * 60 * 1000;

// --- MQTT 3.1.1 framing (the publisher writes it, the tap reads it) ---

void append_remaining_length(std::string& out, std::size_t n) {
  do {
    char byte = static_cast<char>(n % 128);
    n /= 128;
    if (n > 0) byte = static_cast<char>(byte | 0x80);
    out += byte;
  } while (n > 0);
}

void append_u16_string(std::string& out, std::string_view s) {
  out += static_cast<char>(s.size() >> 8);
  out += static_cast<char>(s.size() & 0xFF);
  out += s;
}

std::string connect_packet(std::string_view client_id) {
  std::string body;
  append_u16_string(body, "MQTT");
  body += '\x04';              // protocol level 3.1.1
  body += '\x02';              // clean session
  body.append("\x00\x00", 2);  // keepalive 0: none
  append_u16_string(body, client_id);
  std::string packet = "\x10";
  append_remaining_length(packet, body.size());
  return packet + body;
}

std::string publish_packet(std::string_view topic, std::string_view payload) {
  std::string packet = "\x30";  // PUBLISH, QoS 0, no retain
  append_remaining_length(packet, 2 + topic.size() + payload.size());
  append_u16_string(packet, topic);
  packet += payload;
  return packet;
}

// The length of the first whole packet in `buf`: 0 when incomplete,
// nullopt when the remaining length is malformed.
std::optional<std::size_t> packet_length(std::string_view buf) {
  std::size_t remaining = 0;
  std::size_t multiplier = 1;
  for (std::size_t i = 1; i < buf.size() && i <= 4; ++i) {
    const auto byte = static_cast<unsigned char>(buf[i]);
    remaining += (byte & 0x7F) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) == 0) {
      const std::size_t total = 1 + i + remaining;
      return buf.size() >= total ? total : 0;
    }
  }
  return buf.size() > 4 ? std::nullopt : std::optional<std::size_t>(0);
}

struct Publish {
  std::string_view topic;
  std::string_view payload;
};
// The topic and payload of a whole PUBLISH packet, or nullopt.
std::optional<Publish> read_publish(std::string_view packet) {
  if ((static_cast<unsigned char>(packet[0]) >> 4) != 3) return std::nullopt;
  std::size_t at = 1;
  while (at < packet.size() && (packet[at] & 0x80) != 0) ++at;
  ++at;
  if (at + 2 > packet.size()) return std::nullopt;
  const std::size_t topic_size = static_cast<unsigned char>(packet[at]) * 256u +
                                 static_cast<unsigned char>(packet[at + 1]);
  at += 2;
  if (at + topic_size > packet.size()) return std::nullopt;
  Publish p{packet.substr(at, topic_size), {}};
  at += topic_size;
  if (((static_cast<unsigned char>(packet[0]) >> 1) & 3) != 0) at += 2;
  if (at > packet.size()) return std::nullopt;
  p.payload = packet.substr(at);
  return p;
}

// --- The market: book n of a symbol ---

void set_money(google::protobuf::Message& money, std::int64_t hundredths) {
  auto& m = static_cast<settrade::pb::Money&>(money);
  m.set_units(hundredths / 100);
  m.set_nanos(static_cast<std::int32_t>(hundredths % 100 * 10'000'000));
}

std::string book_payload(std::string_view symbol, std::uint64_t n) {
  settrade::pb::BidOfferV3 book;
  book.set_symbol(std::string(symbol));
  const auto* descriptor = book.GetDescriptor();
  const auto* reflection = book.GetReflection();
  auto field = [&](std::string name, int level) {
    return descriptor->FindFieldByName(name + std::to_string(level));
  };
  std::uint64_t hash = 0;
  for (char c : symbol) hash = hash * 31 + static_cast<unsigned char>(c);
  constexpr std::int64_t kTick = 25;  // 0.25 baht
  const std::int64_t phase = static_cast<std::int64_t>(n % 16);
  const std::int64_t shift = phase < 8 ? phase : 16 - phase;  // 0…8…0
  const std::int64_t best_bid =
      2000 + static_cast<std::int64_t>(hash % 80) * 100 + shift * kTick;
  for (int level = 1; level <= 10; ++level) {
    const bool empty_bid = level >= 9 && n % 3 == 0;
    if (!empty_bid) {
      set_money(*reflection->MutableMessage(&book, field("bid_price", level)),
                best_bid - (level - 1) * kTick);
      reflection->SetInt64(
          &book, field("bid_volume", level),
          static_cast<std::int64_t>(100 * (1 + (n * 13 + level * 7) % 50)));
    }
    set_money(*reflection->MutableMessage(&book, field("ask_price", level)),
              best_bid + level * kTick);
    reflection->SetInt64(
        &book, field("ask_volume", level),
        level == 10
            ? static_cast<std::int64_t>(n)  // the sequence number
            : static_cast<std::int64_t>(100 * (1 + (n * 7 + level * 5) % 50)));
  }
  if (n % 5 != 0) {
    book.set_bid_flag(settrade::pb::NORMAL);
    book.set_ask_flag(settrade::pb::NORMAL);
  }
  return book.SerializeAsString();
}

// Garbage the codec rejects, in turn: not protobuf, a negative volume, a
// symbol that is not the topic's.
std::string malformed_payload(std::string_view symbol, std::uint64_t i) {
  switch (i % 3) {
    case 0:
      return std::string("\xff\xff\xff\xff garbage", 13);
    case 1: {
      settrade::pb::BidOfferV3 book;
      book.set_symbol(std::string(symbol));
      book.set_bid_volume1(-5);
      return book.SerializeAsString();
    }
    default: {
      settrade::pb::BidOfferV3 book;
      book.set_symbol(std::string(symbol) + "X");
      return book.SerializeAsString();
    }
  }
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// --- The tap: a TCP relay to mosquitto that reads what it forwards ---

class Tap {
 public:
  explicit Tap(std::uint16_t target_port)
      : target_(asio::ip::make_address("127.0.0.1"), target_port),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        codec_(settrade::SettradeCodec::create().value()) {
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Tap() {
    ioc_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Stops forwarding on the open links for `d` (0: until they end).
  void stall_all(Duration d) {
    run_on_thread([this, d] {
      const SteadyTime until =
          d > Duration::zero() ? SteadyClock::now() + d : SteadyTime::max();
      for (const auto& weak : links_) {
        if (auto link = weak.lock()) link->stall(until, d);
      }
    });
  }

  std::vector<ConnectionLog> logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }

 private:
  struct Link : std::enable_shared_from_this<Link> {
    Link(Tap& t, tcp::socket c, std::size_t i)
        : tap(t), client(std::move(c)), server(t.ioc_), index(i) {}

    void start() {
      server.async_connect(tap.target_, [self = shared_from_this()](
                                            boost::system::error_code ec) {
        if (ec) return self->end();
        self->read_client();
        self->read_server();
      });
    }
    bool stalled() const { return SteadyClock::now() < stalled_until; }
    void stall(SteadyTime until, Duration d) {
      stalled_until = until;
      if (until == SteadyTime::max()) return;
      auto timer = std::make_shared<asio::steady_timer>(tap.ioc_, d);
      timer->async_wait(
          [self = shared_from_this(), timer](auto) { self->flush_up(); });
    }
    // Client → mosquitto: always read (so an end is seen), forward unless
    // stalled.
    void read_client() {
      client.async_read_some(asio::buffer(up),
                             [self = shared_from_this()](
                                 boost::system::error_code ec, std::size_t n) {
                               if (ec) return self->end();
                               self->held_up.append(self->up.data(), n);
                               self->flush_up();
                               self->read_client();
                             });
    }
    void flush_up() {
      if (ended || writing_up || held_up.empty() || stalled()) return;
      writing_up = true;
      sending_up = std::move(held_up);
      held_up.clear();
      asio::async_write(server, asio::buffer(sending_up),
                        [self = shared_from_this()](
                            boost::system::error_code ec, std::size_t) {
                          self->writing_up = false;
                          if (ec) return self->end();
                          self->flush_up();
                        });
    }
    // Mosquitto → client: whole packets, recorded as forwarded; dropped
    // while stalled.
    void read_server() {
      server.async_read_some(asio::buffer(down),
                             [self = shared_from_this()](
                                 boost::system::error_code ec, std::size_t n) {
                               if (ec) return self->end();
                               self->from_server.append(self->down.data(), n);
                               self->forward_packets();
                             });
    }
    void forward_packets() {
      sending_down.clear();
      while (true) {
        const std::optional<std::size_t> size = packet_length(from_server);
        if (!size) return end();  // not MQTT: give up on this link
        if (*size == 0) break;
        const std::string_view packet(from_server.data(), *size);
        if (!stalled()) {
          tap.record(index, packet);
          sending_down.append(packet);
        }
        from_server.erase(0, *size);
      }
      if (sending_down.empty()) return read_server();
      asio::async_write(client, asio::buffer(sending_down),
                        [self = shared_from_this()](
                            boost::system::error_code ec, std::size_t) {
                          if (ec) return self->end();
                          self->read_server();
                        });
    }
    void end() {
      if (ended) return;
      ended = true;
      boost::system::error_code ignored;
      client.shutdown(tcp::socket::shutdown_both, ignored);
      client.close(ignored);
      server.shutdown(tcp::socket::shutdown_both, ignored);
      server.close(ignored);
      tap.ended(index);
    }

    Tap& tap;
    tcp::socket client;
    tcp::socket server;
    std::size_t index;
    std::array<char, 16384> up{};
    std::array<char, 16384> down{};
    std::string held_up, sending_up, from_server, sending_down;
    bool writing_up = false;
    bool ended = false;
    SteadyTime stalled_until = SteadyTime::min();
  };

  void accept() {
    acceptor_.async_accept(
        [this](boost::system::error_code ec, tcp::socket socket) {
          if (ec) return;
          std::size_t index;
          {
            std::lock_guard<std::mutex> lock(mu_);
            index = logs_.size();
            ConnectionLog log;
            log.accepted_at = SteadyClock::now();
            logs_.push_back(std::move(log));
          }
          auto link = std::make_shared<Link>(*this, std::move(socket), index);
          links_.push_back(link);
          link->start();
          accept();
        });
  }

  void record(std::size_t index, std::string_view packet) {
    const std::optional<Publish> publish = read_publish(packet);
    if (!publish) return;
    events_.clear();
    const bool ok =
        codec_.decode_bid_offer(publish->topic, publish->payload, events_)
            .ok() &&
        events_.size() == 1;
    std::lock_guard<std::mutex> lock(mu_);
    ConnectionLog& log = logs_[index];
    if (!ok) {
      ++log.malformed_sent;
      return;
    }
    const auto& book = std::get<Book>(events_.front());
    const auto seq = static_cast<std::uint64_t>(book.asks[9].quantity);
    auto& sent = log.data[std::string(publish->topic)];
    ++sent.frames;
    ++sent.records;
    if (sent.first_seq == 0) sent.first_seq = seq;
    sent.last_seq = seq;
  }

  void ended(std::size_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    logs_[index].ended_at = SteadyClock::now();
  }

  template <class F>
  void run_on_thread(F f) {
    std::promise<void> done;
    asio::post(ioc_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  tcp::endpoint target_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::weak_ptr<Link>> links_;  // the tap thread's
  settrade::SettradeCodec codec_;           // the tap thread's
  std::vector<MarketEvent> events_;         // the tap thread's
  mutable std::mutex mu_;
  std::vector<ConnectionLog> logs_;  // guarded by mu_
  std::thread thread_;
};

// --- The engine ---

class SettradeSimImpl final : public SettradeSim {
 public:
  explicit SettradeSimImpl(const BrokerSimOptions& o)
      : symbols_(o.symbols),
        book_rate_(o.book_rate),
        app_id_(o.appkey),
        app_secret_(o.secretkey),
        token_ttl_(o.token_ttl),
        seq_(o.symbols.size()),
        rng_(std::random_device{}()) {}

  ~SettradeSimImpl() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (publisher_thread_.joinable()) publisher_thread_.join();
    proxy_.reset();
    bridge_.reset();
    tap_.reset();
    broker_.reset();
    if (!cert_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(cert_dir_, ignored);
    }
  }

  absl::Status start() {
    std::string dir =
        (std::filesystem::temp_directory_path() / "feedkit_sim_settrade_XXXXXX")
            .string();
    if (mkdtemp(dir.data()) == nullptr) {
      return absl::UnavailableError("SettradeSim: cannot make a temp dir");
    }
    cert_dir_ = dir;
    auto cert = feedkit::testing::make_test_certificate(cert_dir_);
    if (!cert.ok()) return cert.status();
    cert_ = *cert;
    auto broker = feedkit::testing::MosquittoBroker::start();
    if (!broker.ok()) return broker.status();
    broker_ = std::move(broker).value();
    tap_ = std::make_unique<Tap>(broker_->port());
    auto bridge =
        feedkit::testing::WsTcpBridge::start({.target_port = tap_->port(),
                                              .tls = true,
                                              .cert_file = cert_.cert_file,
                                              .key_file = cert_.key_file});
    if (!bridge.ok()) return bridge.status();
    bridge_ = std::move(bridge).value();
    auto proxy = feedkit::testing::TcpFaultProxy::start(
        {.target_port = bridge_->port()});
    if (!proxy.ok()) return proxy.status();
    proxy_ = std::move(proxy).value();
    {
      std::lock_guard<std::mutex> lock(mu_);
      rotate_dispatcher_token();
    }
    if (absl::Status s = connect_publisher(); !s.ok()) return s;
    publisher_thread_ = std::thread([this] { publish_loop(); });
    return absl::OkStatus();
  }

  HttpResponse on_rest(const HttpRequest& request,
                       std::atomic<std::uint64_t>& issued) override {
    const std::string_view target = request.target;
    if (target.starts_with("/api/oam/v1/") &&
        target.find("/broker-apps/") != std::string_view::npos &&
        target.ends_with("/login")) {
      if (request.method != "POST") return method_not_allowed();
      return login(request, issued);
    }
    if (target.starts_with("/api/dispatcher/v3/") &&
        target.ends_with("/token")) {
      if (request.method != "GET") return method_not_allowed();
      return dispatcher(request, issued);
    }
    return json_response(404, R"({"code":"E404","message":"not found"})");
  }

  std::string ws_url() const override {
    return absl::StrCat("wss://localhost:", proxy_->port(),
                        "/api/dispatcher/v3/", std::string(kBrokerId), "/mqtt");
  }
  std::uint16_t ws_port() const override { return proxy_->port(); }
  std::string ca_file() const override { return cert_.cert_file; }

  void apply(const FaultCommand& command, double speed) override {
    const auto scaled = std::chrono::duration_cast<Duration>(
        command.duration / (speed > 0 ? speed : 1.0));
    switch (command.action) {
      case FaultAction::stall:
        tap_->stall_all(scaled);
        break;
      case FaultAction::close:
        bridge_->close_all();
        break;
      case FaultAction::reset:
        proxy_->reset_all();
        break;
      case FaultAction::expire_token: {
        std::lock_guard<std::mutex> lock(mu_);
        access_tokens_.clear();
        rotate_dispatcher_token();
        bridge_->close_all();
        break;
      }
      case FaultAction::burst: {
        std::lock_guard<std::mutex> lock(mu_);
        burst_multiplier_ = command.multiplier;
        burst_until_ = SteadyClock::now() + scaled;
        for (SteadyTime& t : next_due_) t = SteadyClock::now();
        wake_.notify_all();
        break;
      }
      case FaultAction::malformed: {
        std::lock_guard<std::mutex> lock(mu_);
        for (std::uint64_t i = 0; i < command.count; ++i) {
          const std::string& symbol = symbols_[i % symbols_.size()];
          send(publish_packet(settrade::bid_offer_topic(symbol),
                              malformed_payload(symbol, i)));
        }
        break;
      }
      case FaultAction::keep_subscriptions:  // no MQTT meaning:
      case FaultAction::max_subscriptions:   // check_settrade_script()
      case FaultAction::appkey_in_use:       // rejects them
      case FaultAction::end:
        break;
    }
  }

  std::vector<ConnectionLog> connection_logs() const override {
    return tap_->logs();
  }

  std::uint64_t books_published(std::string_view symbol) const override {
    for (std::size_t i = 0; i < symbols_.size(); ++i) {
      if (symbols_[i] == symbol) return seq_[i].load();
    }
    return 0;
  }

 private:
  static HttpResponse method_not_allowed() {
    return json_response(405,
                         R"({"code":"E405","message":"method not allowed"})");
  }
  static HttpResponse unauthorized(std::string_view message) {
    return json_response(401, absl::StrCat(R"({"code":"E401","message":")",
                                           std::string(message), "\"}"));
  }

  HttpResponse login(const HttpRequest& request,
                     std::atomic<std::uint64_t>& issued) {
    json::Document doc;
    if (doc.parse(request.body) != json::JsonError::none) {
      return json_response(400, R"({"code":"E400","message":"bad JSON"})");
    }
    const json::Value root = doc.root();
    const auto api_key = root["apiKey"].decoded_string();
    const auto params = root["params"].decoded_string();
    const auto signature = root["signature"].decoded_string();
    const auto timestamp_text = root["timestamp"].decoded_string();
    const std::optional<std::int64_t> timestamp =
        timestamp_text ? parse_int(*timestamp_text)
                       : root["timestamp"].integer();
    if (!api_key || *api_key != app_id_) return unauthorized("invalid apiKey");
    if (!params || !signature || !timestamp) {
      return unauthorized("params, signature and timestamp are required");
    }
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (std::abs(now_ms - *timestamp) > kMaxClockSkewMs) {
      return unauthorized("timestamp too far from server time");
    }
    const absl::StatusOr<bool> valid = settrade::verify_login_signature(
        app_id_, app_secret_, *params, *timestamp, *signature);
    if (!valid.ok() || !*valid) return unauthorized("invalid signature");

    std::lock_guard<std::mutex> lock(mu_);
    const std::string access = random_token();
    access_tokens_[access] = SteadyClock::now() + token_ttl_;
    issued += 1;
    const auto ttl_s = std::max<std::int64_t>(
        1,
        std::chrono::duration_cast<std::chrono::seconds>(token_ttl_).count());
    return json_response(
        200, absl::StrCat(R"({"token_type":"Bearer","access_token":")", access,
                          R"(","refresh_token":")", random_token(),
                          R"(","expires_in":)", ttl_s, "}"));
  }

  HttpResponse dispatcher(const HttpRequest& request,
                          std::atomic<std::uint64_t>& issued) {
    const std::string_view auth = request.header("Authorization");
    const std::size_t space = auth.find(' ');
    if (space == std::string_view::npos ||
        !absl::EqualsIgnoreCase(std::string(auth.substr(0, space)), "Bearer")) {
      return unauthorized("missing bearer token");
    }
    const std::string access(auth.substr(space + 1));
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = access_tokens_.find(access);
    if (it == access_tokens_.end() || it->second <= SteadyClock::now()) {
      return unauthorized("invalid or expired access token");
    }
    issued += 1;
    return json_response(200,
                         absl::StrCat(R"({"hosts":["127.0.0.1"],"token":")",
                                      dispatcher_token_, "\"}"));
  }

  // Under mu_.
  std::string random_token() {
    static constexpr char kAlnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string token;
    for (int i = 0; i < 48; ++i) token += kAlnum[rng_() % 62];
    return token;
  }
  // Under mu_.
  void rotate_dispatcher_token() {
    dispatcher_token_ = random_token();
    dispatcher_expires_ = SteadyClock::now() + token_ttl_;
    bridge_->set_required_bearer(dispatcher_token_);
  }

  absl::Status connect_publisher() {
    boost::system::error_code ec;
    publisher_.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), broker_->port()),
        ec);
    if (!ec)
      asio::write(publisher_, asio::buffer(connect_packet("feedkit-sim")), ec);
    std::array<char, 4> connack{};
    if (!ec) asio::read(publisher_, asio::buffer(connack), ec);
    if (ec || connack[0] != 0x20 || connack[3] != 0) {
      return absl::UnavailableError(absl::StrCat(
          "SettradeSim: the publisher cannot connect to mosquitto: ",
          ec ? ec.message() : "CONNACK refused"));
    }
    return absl::OkStatus();
  }

  // Under mu_.
  void send(const std::string& packet) {
    if (publisher_failed_) return;
    boost::system::error_code ec;
    asio::write(publisher_, asio::buffer(packet), ec);
    if (ec) {
      publisher_failed_ = true;
      std::cerr << "feedkit-sim: settrade publisher: " << ec.message() << "\n";
    }
  }

  void publish_loop() {
    std::unique_lock<std::mutex> lock(mu_);
    next_due_.assign(symbols_.size(), SteadyClock::now());
    while (!stopping_) {
      const SteadyTime now = SteadyClock::now();
      const double rate =
          book_rate_ * (now < burst_until_ ? burst_multiplier_ : 1.0);
      const auto interval = std::chrono::duration_cast<Duration>(
          std::chrono::duration<double>(1.0 / rate));
      SteadyTime wake = now + std::chrono::seconds(1);
      for (std::size_t i = 0; i < symbols_.size(); ++i) {
        if (next_due_[i] <= now) {
          const std::uint64_t n = seq_[i].load() + 1;
          send(publish_packet(settrade::bid_offer_topic(symbols_[i]),
                              book_payload(symbols_[i], n)));
          seq_[i].store(n);
          next_due_[i] =
              std::max(next_due_[i] + interval, now - std::chrono::seconds(1));
        }
        wake = std::min(wake, next_due_[i]);
      }
      if (dispatcher_expires_ <= now) {
        rotate_dispatcher_token();
        bridge_->close_all();
      }
      wake = std::min(wake, dispatcher_expires_);
      wake_.wait_until(lock, wake);
    }
  }

  const std::vector<std::string> symbols_;
  const double book_rate_;
  const std::string app_id_;
  const std::string app_secret_;  // never shown
  const Duration token_ttl_;
  std::string cert_dir_;
  feedkit::testing::TestCertificate cert_;
  std::unique_ptr<feedkit::testing::MosquittoBroker> broker_;
  std::unique_ptr<Tap> tap_;
  std::unique_ptr<feedkit::testing::WsTcpBridge> bridge_;
  std::unique_ptr<feedkit::testing::TcpFaultProxy> proxy_;
  std::vector<std::atomic<std::uint64_t>> seq_;  // last n per symbol

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                              // guarded by mu_
  std::mt19937_64 rng_;                                // guarded by mu_
  std::map<std::string, SteadyTime> access_tokens_;    // guarded by mu_
  std::string dispatcher_token_;                       // guarded by mu_
  SteadyTime dispatcher_expires_ = SteadyTime::max();  // guarded by mu_
  double burst_multiplier_ = 1.0;                      // guarded by mu_
  SteadyTime burst_until_{};                           // guarded by mu_
  std::vector<SteadyTime> next_due_;                   // guarded by mu_
  asio::io_context publisher_ioc_;
  tcp::socket publisher_{publisher_ioc_};  // writes under mu_
  bool publisher_failed_ = false;          // guarded by mu_
  std::thread publisher_thread_;
};

}  // namespace

absl::Status check_settrade_script(const std::vector<FaultCommand>& commands,
                                   std::string_view name) {
  for (const FaultCommand& c : commands) {
    if (c.action == FaultAction::keep_subscriptions ||
        c.action == FaultAction::max_subscriptions ||
        c.action == FaultAction::appkey_in_use) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(name), ":", c.line, ": ",
          std::string(to_string(c.action)),
          " has no meaning for settrade (MQTT: the broker keeps no "
          "subscriptions, has no cap and no app-key sessions)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SettradeSim>> SettradeSim::start(
    const BrokerSimOptions& options) {
  if (!(options.book_rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("BrokerSim: settrade publishes books only: book_rate "
                     "must be > 0, got ",
                     options.book_rate));
  }
  auto sim = std::make_unique<SettradeSimImpl>(options);
  if (absl::Status s = sim->start(); !s.ok()) return s;
  return std::unique_ptr<SettradeSim>(std::move(sim));
}

}  // namespace examples::sim
