// SPDX-License-Identifier: Apache-2.0
//
// bench/ws_client_bench.cc
//
// Loopback end to end, on real sockets: FaultyWsServer sends small DATA
// frames ("DATA A <seq> t=<ns>", ~35 bytes); the client splits each frame
// (parse_line_data), pushes {seq, sent_ns} into a Dispatcher, and a consumer
// thread polls.
//
//   BM_WsClient_Flood        feedkit::WsClient → Dispatcher → consumer, the
//                            server flooding as fast as the socket takes it
//   BM_BareBeast_Flood       baseline: a bare synchronous Beast client reading
//                            and splitting the same flood, no feedkit
//   BM_WsClient_Latency50k   send→poll latency at 50,000 frames/s offered,
//                            with a consumer sleeping in poll() (/0) or
//                            spinning on poll(timeout 0) (/1)
//   BM_BareBeast_Latency50k  send→read latency of the bare client, same rate
//
// Goals (issue 4): >= 500,000 frames/s on one connection; p99 <= 200 us at
// 50 k/s. Latency counters are in microseconds (p50_us, p99_us, p999_us,
// max_us); `drops` counts frames the Dispatcher dropped. The server and the
// client share the machine's cores, so the flood figure is a lower bound for
// a client alone.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <vector>

#include "bench_main.h"
#include "feedkit/dispatcher.h"
#include "feedkit/testing/faulty_ws_server.h"
#include "feedkit/testing/line_protocol.h"
#include "feedkit/ws_client.h"

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using feedkit::Duration;
using feedkit::SteadyClock;
using feedkit::testing::FaultyWsServer;
using namespace std::chrono_literals;

constexpr double kOfferedRate = 50'000;  // frames/s for the latency cases

std::size_t flood_frames() {
  return feedkit::bench::smoke_run() ? 20'000 : 1'000'000;
}
std::size_t latency_frames() {
  return feedkit::bench::smoke_run() ? 5'000 : 100'000;  // 2 s at 50 k/s
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// The event the client pushes per frame.
struct Tick {
  std::uint64_t seq = 0;
  std::int64_t sent_ns = 0;
};

// Latency samples in nanoseconds → percentiles in microseconds.
void report_latency(benchmark::State& state, std::vector<std::int64_t>& ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double p) {
    const auto i =
        static_cast<std::size_t>(p * static_cast<double>(ns.size() - 1));
    return static_cast<double>(ns[i]) / 1e3;
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["p999_us"] = pct(0.999);
  state.counters["max_us"] = static_cast<double>(ns.back()) / 1e3;
}

// A server, a WsClient on its own io thread subscribed to "A", a Dispatcher
// and a consumer thread counting data events (and, when asked, recording
// send→poll latency).
class FeedkitPipeline {
 public:
  // `spin`: the consumer polls without waiting (and yields when empty)
  // instead of sleeping in poll() until a producer wakes it.
  bool start(benchmark::State& state, bool spin = false) {
    spin_ = spin;
    auto server = FaultyWsServer::start();
    if (!server.ok()) return fail(state, server.status().ToString());
    server_ = std::move(server).value();
    auto dispatcher = feedkit::Dispatcher<Tick>::create({.capacity = 1 << 16});
    if (!dispatcher.ok()) return fail(state, dispatcher.status().ToString());
    dispatcher_ = std::move(dispatcher).value();
    auto producer = std::make_shared<feedkit::Dispatcher<Tick>::Producer>(
        dispatcher_->make_producer().value());

    feedkit::WsClientOptions options;
    options.url = server_->url();
    feedkit::WsClientCallbacks callbacks;
    // On the client's strand: split, push, nothing else.
    callbacks.on_data = [this, producer](std::string_view frame,
                                         feedkit::SteadyTime recv_time,
                                         std::uint64_t) {
      auto d = feedkit::testing::parse_line_data(frame);
      if (!d) return;
      auto sent = feedkit::testing::parse_sent_time(d->payload);
      Tick tick{d->seq, sent ? sent->time_since_epoch().count() : 0};
      (void)producer->try_push(tick);  // a drop is counted by the Dispatcher
      // Diagnostic: how much of the latency is spent before the Dispatcher.
      if (sent && record_.load(std::memory_order_relaxed)) {
        std::lock_guard<std::mutex> lock(mu_);
        recv_latencies_.push_back((recv_time - *sent).count());
      }
    };
    callbacks.on_gap = [producer](const feedkit::GapEvent&) {
      producer->push_control(Tick{});
    };
    auto credentials =
        [](bool,
           std::function<void(absl::StatusOr<feedkit::Credentials>)> done) {
          done(feedkit::Credentials{.secret = "bench"});
        };
    auto client = feedkit::WsClient::create(
        ioc_, options, std::make_unique<feedkit::testing::LineProtocol>(false),
        credentials, callbacks);
    if (!client.ok()) return fail(state, client.status().ToString());
    client_ = std::move(client).value();
    client_->want("A");
    client_->start();
    io_thread_ = std::thread([this] { ioc_.run(); });
    consumer_ = std::thread([this] { consume(); });
    const bool live = server_->wait_for(
        [&] {
          return client_->stats().state == feedkit::ConnectionState::live &&
                 server_->count_received("SUB A") >= 1;
        },
        10s);
    if (!live) return fail(state, "the client did not go live");
    // The ACK the client saw was sent after the SUB was recorded: the server
    // holds "A" for the session once the client is live.
    return true;
  }

  void record_latency(bool on) { record_.store(on); }

  // Waits until `target` data events in all were polled or dropped; false
  // on timeout.
  bool wait_for_events(std::uint64_t target, Duration timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      const auto s = dispatcher_->stats();
      if (s.polled + s.dropped() >= target) return true;
      std::this_thread::sleep_for(200us);
    }
    return false;
  }

  std::uint64_t drops() const { return dispatcher_->stats().dropped(); }
  FaultyWsServer& server() { return *server_; }

  // Send → on_data(recv_time) samples: how much of the latency is spent
  // before the Dispatcher.
  std::vector<std::int64_t> take_recv_latencies() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(recv_latencies_);
  }

  std::vector<std::int64_t> take_latencies() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(latencies_);
  }

  ~FeedkitPipeline() {
    if (client_) {
      auto stopped = std::make_shared<std::promise<void>>();
      client_->stop([stopped] { stopped->set_value(); });
      stopped->get_future().wait_for(5s);
      client_.reset();
    }
    work_.reset();
    ioc_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    done_.store(true);
    if (consumer_.joinable()) consumer_.join();
  }

 private:
  static bool fail(benchmark::State& state, const std::string& why) {
    state.SkipWithError(why.c_str());
    return false;
  }

  void consume() {
    std::vector<feedkit::Polled<Tick>> batch;
    std::vector<std::int64_t> local;
    local.reserve(latency_frames() + 1024);
    while (!done_.load(std::memory_order_relaxed)) {
      if (dispatcher_->poll(batch, 256, spin_ ? Duration::zero() : 10ms) == 0) {
        if (spin_) std::this_thread::yield();
        continue;
      }
      if (!record_.load(std::memory_order_relaxed)) continue;
      const std::int64_t now = steady_ns();  // the whole batch is ready now
      for (const auto& e : batch) {
        if (!e.is_control() && e.value.sent_ns != 0) {
          local.push_back(now - e.value.sent_ns);
        }
      }
      if (local.size() >= 4096) {
        std::lock_guard<std::mutex> lock(mu_);
        latencies_.insert(latencies_.end(), local.begin(), local.end());
        local.clear();
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    latencies_.insert(latencies_.end(), local.begin(), local.end());
  }

  std::unique_ptr<FaultyWsServer> server_;
  std::unique_ptr<feedkit::Dispatcher<Tick>> dispatcher_;
  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      ioc_.get_executor()};
  std::shared_ptr<feedkit::WsClient> client_;
  std::thread io_thread_;
  std::thread consumer_;
  bool spin_ = false;
  std::atomic<bool> done_{false};
  std::atomic<bool> record_{false};
  std::mutex mu_;
  std::vector<std::int64_t> latencies_;
  std::vector<std::int64_t> recv_latencies_;
};

// A bare synchronous Beast client: connect, "SUB A", then read and split.
class BareClient {
 public:
  bool start(benchmark::State& state, FaultyWsServer& server) {
    beast::error_code ec;
    ws_.next_layer().connect(
        net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                               server.port()),
        ec);
    if (!ec) ws_.handshake("127.0.0.1", "/", ec);
    if (!ec) ws_.write(net::buffer(std::string("SUB A")), ec);
    if (!ec) ws_.read(buffer_, ec);
    if (ec || beast::buffers_to_string(buffer_.data()) != "ACK A") {
      state.SkipWithError("bare client: no ACK A");
      return false;
    }
    buffer_.consume(buffer_.size());
    return true;
  }

  // Reads one frame; returns its send time (0 if none), or -1 on error.
  std::int64_t read_one() {
    beast::error_code ec;
    ws_.read(buffer_, ec);
    if (ec) return -1;
    const auto data = buffer_.data();
    const std::string_view frame(static_cast<const char*>(data.data()),
                                 data.size());
    std::int64_t sent = 0;
    if (auto d = feedkit::testing::parse_line_data(frame)) {
      if (auto t = feedkit::testing::parse_sent_time(d->payload)) {
        sent = t->time_since_epoch().count();
      }
      last_seq_ = d->seq;
    }
    buffer_.consume(buffer_.size());
    return sent;
  }

  std::uint64_t last_seq() const { return last_seq_; }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_{ioc_};
  beast::flat_buffer buffer_;
  std::uint64_t last_seq_ = 0;
};

void BM_WsClient_Flood(benchmark::State& state) {
  FeedkitPipeline pipeline;
  if (!pipeline.start(state)) return;
  const std::size_t n = flood_frames();
  std::uint64_t target = 0;
  for (auto _ : state) {
    target += n;
    pipeline.server().flood("A", n);
    if (!pipeline.wait_for_events(target, 60s)) {
      state.SkipWithError("timed out waiting for the flood");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(target));
  state.counters["drops"] = static_cast<double>(pipeline.drops());
}
BENCHMARK(BM_WsClient_Flood)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_BareBeast_Flood(benchmark::State& state) {
  auto server = FaultyWsServer::start().value();
  BareClient client;
  if (!client.start(state, *server)) return;
  const std::size_t n = flood_frames();
  std::uint64_t total = 0;
  for (auto _ : state) {
    server->flood("A", n);
    for (std::size_t i = 0; i < n; ++i) {
      if (client.read_one() < 0) {
        state.SkipWithError("bare client: read failed");
        return;
      }
    }
    total += n;
  }
  if (client.last_seq() != total)
    state.SkipWithError("bare client: lost frames");
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_BareBeast_Flood)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_WsClient_Latency50k(benchmark::State& state) {
  FeedkitPipeline pipeline;
  if (!pipeline.start(state, /*spin=*/state.range(0) != 0)) return;
  const std::size_t n = latency_frames();
  pipeline.record_latency(true);
  std::uint64_t target = 0;
  for (auto _ : state) {
    target += n;
    pipeline.server().stream("A", kOfferedRate, n);
    if (!pipeline.wait_for_events(target, 60s)) {
      state.SkipWithError("timed out waiting for the stream");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(target));
  state.counters["drops"] = static_cast<double>(pipeline.drops());
  pipeline.record_latency(false);
  // Let the consumer hand over its last samples.
  std::this_thread::sleep_for(20ms);
  auto samples = pipeline.take_latencies();
  report_latency(state, samples);
  auto recv = pipeline.take_recv_latencies();
  if (!recv.empty()) {
    std::sort(recv.begin(), recv.end());
    state.counters["recv_p50_us"] =
        static_cast<double>(recv[recv.size() / 2]) / 1e3;
    state.counters["recv_p99_us"] =
        static_cast<double>(recv[recv.size() * 99 / 100]) / 1e3;
  }
}
BENCHMARK(BM_WsClient_Latency50k)
    ->ArgName("spinning_consumer")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_BareBeast_Latency50k(benchmark::State& state) {
  auto server = FaultyWsServer::start().value();
  BareClient client;
  if (!client.start(state, *server)) return;
  const std::size_t n = latency_frames();
  std::vector<std::int64_t> samples;
  samples.reserve(n);
  for (auto _ : state) {
    server->stream("A", kOfferedRate, n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t sent = client.read_one();
      if (sent < 0) {
        state.SkipWithError("bare client: read failed");
        return;
      }
      if (sent > 0) samples.push_back(steady_ns() - sent);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n * state.iterations()));
  report_latency(state, samples);
}
BENCHMARK(BM_BareBeast_Latency50k)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

FEEDKIT_BENCHMARK_MAIN({
    {"feedkit_ws/bare_beast frames", "BM_WsClient_Flood", "BM_BareBeast_Flood",
     feedkit::bench::Metric::items_per_second},
})
