// SPDX-License-Identifier: Apache-2.0
//
// bench/mqtt_client_bench.cc
//
// Loopback end to end, on real sockets: a raw TCP MQTT publisher (written
// here, so it is never the bottleneck) sends N QoS 0 messages of 16 bytes
// (sequence number and send time) through a real mosquitto the benchmark
// starts; a subscriber stamps each message with its receive time and pushes
// {seq, sent_ns} into a Dispatcher; a consumer thread polls.
//
//   BM_MqttClient_Flood   feedkit::MqttClient (on its own io thread)
//   BM_BarePahoCpp_Flood  baseline: a bare Paho C++ async_client whose
//                         message callback does the same work
//   BM_BarePahoC_Flood    baseline: a bare Paho C MQTTAsync client, the same
//                         work (feedkit's client is built on Paho C)
//
// Goal (issue 5): feedkit >= 0.9 × bare Paho. mosquitto's queue per client
// (max_queued_messages, 1000 by default, which also bounds QoS 0 messages a
// slow subscriber has not read yet) is raised to 10 million, so the broker
// drops nothing; arrivals are counted anyway (`lost` = sent - received) and
// the rate is received messages over the time from the first send to the
// last poll. The publisher, mosquitto, Paho's threads and the consumer share
// the machine's cores.
#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "bench_main.h"
#include "feedkit/dispatcher.h"
#include "feedkit/mqtt_client.h"
#include "feedkit/testing/mosquitto_broker.h"

namespace {

using feedkit::Duration;
using feedkit::SteadyClock;
using feedkit::testing::MosquittoBroker;
using namespace std::chrono_literals;

const std::string kTopic = "bench/feed";

std::size_t flood_messages() {
  return feedkit::bench::smoke_run() ? 2'000 : 100'000;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// The event every subscriber pushes per message.
struct Tick {
  std::uint64_t seq = 0;
  std::int64_t sent_ns = 0;
  std::int64_t recv_ns = 0;
};

// Reads the 16-byte payload: sequence number and send time.
Tick parse_tick(std::string_view payload, std::int64_t recv_ns) {
  Tick t;
  t.recv_ns = recv_ns;
  if (payload.size() >= 16) {
    std::memcpy(&t.seq, payload.data(), 8);
    std::memcpy(&t.sent_ns, payload.data() + 8, 8);
  }
  return t;
}

// MQTT 3.1.1 over a plain socket: CONNECT, then PUBLISH QoS 0 packets
// written in large batches.
class RawPublisher {
 public:
  ~RawPublisher() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool connect(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      return false;
    const std::string id = "bench-publisher";
    std::string body;
    body += std::string("\x00\x04MQTT\x04\x02\x00\x00", 10);  // keepalive off
    append_u16(body, id.size());
    body += id;
    std::string packet(1, '\x10');
    append_length(packet, body.size());
    packet += body;
    if (!write_all(packet)) return false;
    char connack[4];
    std::size_t got = 0;
    while (got < sizeof connack) {
      const ssize_t n = ::read(fd_, connack + got, sizeof connack - got);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return connack[0] == 0x20 && connack[3] == 0;
  }

  // Sends messages first_seq .. first_seq + n - 1.
  bool publish(std::uint64_t first_seq, std::size_t n) {
    std::string batch;
    constexpr std::size_t kBatchBytes = 64 * 1024;
    batch.reserve(kBatchBytes + 64);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t seq = first_seq + i;
      const std::int64_t now = steady_ns();
      batch += '\x30';  // PUBLISH, QoS 0
      append_length(batch, 2 + kTopic.size() + 16);
      append_u16(batch, kTopic.size());
      batch += kTopic;
      batch.append(reinterpret_cast<const char*>(&seq), 8);
      batch.append(reinterpret_cast<const char*>(&now), 8);
      if (batch.size() >= kBatchBytes) {
        if (!write_all(batch)) return false;
        batch.clear();
      }
    }
    return write_all(batch);
  }

 private:
  static void append_u16(std::string& out, std::size_t v) {
    out += static_cast<char>((v >> 8) & 0xFF);
    out += static_cast<char>(v & 0xFF);
  }
  static void append_length(std::string& out, std::size_t v) {
    do {
      char byte = static_cast<char>(v % 128);
      v /= 128;
      if (v > 0) byte = static_cast<char>(byte | 0x80);
      out += byte;
    } while (v > 0);
  }
  bool write_all(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  int fd_ = -1;
};

// A broker, a Dispatcher and a consumer thread counting what it polls. The
// subscriber under test pushes through producer().
class Rig {
 public:
  bool start(benchmark::State& state) {
    auto broker = MosquittoBroker::start({.max_queued_messages = 10'000'000});
    if (!broker.ok()) return fail(state, broker.status().ToString());
    broker_ = *std::move(broker);
    auto dispatcher = feedkit::Dispatcher<Tick>::create({.capacity = 1 << 16});
    if (!dispatcher.ok()) return fail(state, dispatcher.status().ToString());
    dispatcher_ = *std::move(dispatcher);
    producer_.emplace(dispatcher_->make_producer().value());
    consumer_ = std::thread([this] { consume(); });
    return true;
  }

  ~Rig() {
    done_.store(true);
    if (consumer_.joinable()) consumer_.join();
  }

  MosquittoBroker& broker() { return *broker_; }
  feedkit::Dispatcher<Tick>::Producer& producer() { return *producer_; }

  // Publishes `n` messages and waits until the consumer polled them all, or
  // nothing arrived for 2 s (the broker dropped some: `lost` counts them).
  // Returns false on a publisher failure.
  bool flood(benchmark::State& state, std::size_t n) {
    if (!publisher_) {
      publisher_ = std::make_unique<RawPublisher>();
      if (!publisher_->connect(broker_->port()))
        return fail(state, "publisher could not connect");
    }
    const std::uint64_t target = sent_ + n;
    if (!publisher_->publish(sent_, n))
      return fail(state, "publisher write failed");
    sent_ = target;
    std::uint64_t last = polled_.load();
    SteadyClock::time_point progress = SteadyClock::now();
    while (polled_.load() < target) {
      std::this_thread::sleep_for(200us);  // waiting on another thread
      const std::uint64_t now_polled = polled_.load();
      if (now_polled != last) {
        last = now_polled;
        progress = SteadyClock::now();
      } else if (SteadyClock::now() - progress > 2s) {
        break;
      }
    }
    return true;
  }

  void report(benchmark::State& state) {
    const std::uint64_t polled = polled_.load();
    state.SetItemsProcessed(static_cast<std::int64_t>(polled));
    state.counters["lost"] = static_cast<double>(sent_ - polled);
    state.counters["dispatcher_drops"] =
        static_cast<double>(dispatcher_->stats().dropped());
  }

 private:
  static bool fail(benchmark::State& state, const std::string& why) {
    state.SkipWithError(why.c_str());
    return false;
  }

  void consume() {
    std::vector<feedkit::Polled<Tick>> batch;
    while (!done_.load(std::memory_order_relaxed)) {
      const std::size_t n = dispatcher_->poll(batch, 256, 10ms);
      if (n > 0) polled_.fetch_add(n, std::memory_order_relaxed);
    }
  }

  std::unique_ptr<MosquittoBroker> broker_;
  std::unique_ptr<feedkit::Dispatcher<Tick>> dispatcher_;
  std::optional<feedkit::Dispatcher<Tick>::Producer> producer_;
  std::unique_ptr<RawPublisher> publisher_;
  std::thread consumer_;
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> polled_{0};
  std::uint64_t sent_ = 0;
};

// Runs the state loop: one flood per iteration.
void run_floods(benchmark::State& state, Rig& rig) {
  const std::size_t n = flood_messages();
  for (auto _ : state) {
    if (!rig.flood(state, n)) return;
  }
  rig.report(state);
}

void BM_MqttClient_Flood(benchmark::State& state) {
  Rig rig;
  if (!rig.start(state)) return;
  boost::asio::io_context ioc;
  auto work = boost::asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  feedkit::MqttClientOptions options;
  options.uri = rig.broker().url();
  options.credential_use = feedkit::CredentialUse::none;
  feedkit::MqttClientCallbacks callbacks;
  auto& producer = rig.producer();
  // Paho's receive thread: stamp, read, push; nothing else.
  callbacks.on_message = [&producer](std::string_view, std::string_view payload,
                                     feedkit::SteadyTime recv_time,
                                     std::uint64_t) {
    (void)producer.try_push(
        parse_tick(payload, recv_time.time_since_epoch().count()));
  };
  callbacks.on_gap = [&producer](const feedkit::GapEvent&) {
    producer.push_control(Tick{});
  };
  auto client = feedkit::MqttClient::create(ioc, options, {}, callbacks);
  if (!client.ok()) {
    state.SkipWithError(client.status().ToString().c_str());
    work.reset();
    io.join();
    return;
  }
  (*client)->want(kTopic);
  (*client)->start();
  const auto deadline = SteadyClock::now() + 10s;
  while ((*client)->stats().state != feedkit::ConnectionState::live &&
         SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // waiting on another thread
  }
  if ((*client)->stats().state == feedkit::ConnectionState::live) {
    run_floods(state, rig);
  } else {
    state.SkipWithError("the client did not go live");
  }
  auto stopped = std::make_shared<std::promise<void>>();
  (*client)->stop([stopped] { stopped->set_value(); });
  stopped->get_future().wait_for(5s);
  client->reset();
  work.reset();
  io.join();
}
BENCHMARK(BM_MqttClient_Flood)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_BarePahoCpp_Flood(benchmark::State& state) {
  Rig rig;
  if (!rig.start(state)) return;
  mqtt::async_client client(rig.broker().url(), "bench-bare-cpp");
  auto& producer = rig.producer();
  client.set_message_callback([&producer](mqtt::const_message_ptr msg) {
    (void)producer.try_push(
        parse_tick(msg->get_payload_ref().str(), steady_ns()));
  });
  try {
    mqtt::connect_options o;
    o.set_mqtt_version(MQTTVERSION_3_1_1);
    o.set_clean_session(true);
    client.connect(o)->wait();
    client.subscribe(kTopic, 0)->wait();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  run_floods(state, rig);
  try {
    client.disconnect()->wait();
  } catch (const std::exception&) {
  }
}
BENCHMARK(BM_BarePahoCpp_Flood)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// A bare Paho C client: the callbacks report into promises.
struct BareC {
  feedkit::Dispatcher<Tick>::Producer* producer = nullptr;
  std::promise<bool> connected;
  std::promise<bool> subscribed;

  static int on_message(void* context, char* topic, int, MQTTAsync_message* m) {
    auto* self = static_cast<BareC*>(context);
    (void)self->producer->try_push(
        parse_tick(std::string_view(static_cast<const char*>(m->payload),
                                    static_cast<std::size_t>(m->payloadlen)),
                   steady_ns()));
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
  }
  static void on_connected(void* context, MQTTAsync_successData*) {
    static_cast<BareC*>(context)->connected.set_value(true);
  }
  static void on_connect_failed(void* context, MQTTAsync_failureData*) {
    static_cast<BareC*>(context)->connected.set_value(false);
  }
  static void on_subscribed(void* context, MQTTAsync_successData*) {
    static_cast<BareC*>(context)->subscribed.set_value(true);
  }
  static void on_subscribe_failed(void* context, MQTTAsync_failureData*) {
    static_cast<BareC*>(context)->subscribed.set_value(false);
  }
};

void BM_BarePahoC_Flood(benchmark::State& state) {
  Rig rig;
  if (!rig.start(state)) return;
  BareC bare;
  bare.producer = &rig.producer();
  MQTTAsync handle = nullptr;
  const std::string url = rig.broker().url();
  MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
  create.MQTTVersion = MQTTVERSION_3_1_1;
  bool ok = MQTTAsync_createWithOptions(&handle, url.c_str(), "bench-bare-c",
                                        MQTTCLIENT_PERSISTENCE_NONE, nullptr,
                                        &create) == MQTTASYNC_SUCCESS &&
            MQTTAsync_setCallbacks(handle, &bare, nullptr, &BareC::on_message,
                                   nullptr) == MQTTASYNC_SUCCESS;
  if (ok) {
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    o.MQTTVersion = MQTTVERSION_3_1_1;
    o.cleansession = 1;
    o.onSuccess = &BareC::on_connected;
    o.onFailure = &BareC::on_connect_failed;
    o.context = &bare;
    ok = MQTTAsync_connect(handle, &o) == MQTTASYNC_SUCCESS &&
         bare.connected.get_future().get();
  }
  if (ok) {
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    r.onSuccess = &BareC::on_subscribed;
    r.onFailure = &BareC::on_subscribe_failed;
    r.context = &bare;
    ok = MQTTAsync_subscribe(handle, kTopic.c_str(), 0, &r) ==
             MQTTASYNC_SUCCESS &&
         bare.subscribed.get_future().get();
  }
  if (ok) {
    run_floods(state, rig);
  } else {
    state.SkipWithError("bare Paho C client: connect or subscribe failed");
  }
  if (handle != nullptr) MQTTAsync_destroy(&handle);
}
BENCHMARK(BM_BarePahoC_Flood)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

FEEDKIT_BENCHMARK_MAIN({
    {"feedkit_mqtt/bare_paho_cpp messages", "BM_MqttClient_Flood",
     "BM_BarePahoCpp_Flood", feedkit::bench::Metric::items_per_second},
    {"feedkit_mqtt/bare_paho_c messages", "BM_MqttClient_Flood",
     "BM_BarePahoC_Flood", feedkit::bench::Metric::items_per_second},
})
