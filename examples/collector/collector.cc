// SPDX-License-Identifier: Apache-2.0
#include "collector/collector.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"

namespace examples {
namespace {

using feedkit::SteadyClock;
using feedkit::SteadyTime;
using std::chrono::milliseconds;

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { Collector::request_stop(); }

constexpr std::size_t kBatch = 512;
constexpr feedkit::Duration kPollTimeout = milliseconds(50);
constexpr feedkit::Duration kStopTimeout = std::chrono::seconds(5);

}  // namespace

void add_collector_flags(Flags& flags) {
  flags.add({.name = "symbols",
             .help = "comma-separated symbols to collect",
             .required = true});
  flags.add({.name = "out",
             .help = "JSON Lines output file, - for stdout",
             .default_value = "-"});
  flags.add({.name = "queue",
             .help = "dispatcher capacity (events between feed and writer)",
             .default_value = "65536"});
  flags.add({.name = "duration",
             .help = "stop after this many seconds (0 = until SIGINT/SIGTERM)",
             .default_value = "0"});
  flags.add({.name = "expected-interval-ms",
             .help = "normal silence per symbol; stale after 2.4x",
             .default_value = "10000"});
  flags.add({.name = "feed-timeout-ms",
             .help = "the feed as a whole is stale (reconnect) after this "
                     "long with no event of any symbol",
             .default_value = "10000"});
  flags.add({.name = "volume-check",
             .help = "a symbol's cumulative volume jumping inside a "
                     "connection is a gap line (volume_jump)",
             .default_value = "true",
             .boolean = true});
  flags.add({.name = "metrics-port",
             .help = "serve /metrics, /health and /ready on 127.0.0.1:PORT "
                     "(0: a free port; unset: off)"});
  flags.add({.name = "quiet", .help = "no status lines", .boolean = true});
}

absl::StatusOr<CollectorOptions> collector_options(const Flags& flags,
                                                   std::string broker) {
  CollectorOptions o;
  o.broker = std::move(broker);
  o.symbols = flags.list("symbols");
  if (o.symbols.empty()) {
    return absl::InvalidArgumentError("--symbols: lists no symbol");
  }
  o.out_path = flags.get("out");
  auto queue = flags.integer("queue", 1, 1 << 26);
  if (!queue.ok()) return queue.status();
  o.queue_capacity = static_cast<std::size_t>(*queue);
  auto duration = flags.number("duration", 0, 7 * 24 * 3600);
  if (!duration.ok()) return duration.status();
  o.duration = std::chrono::duration_cast<feedkit::Duration>(
      std::chrono::duration<double>(*duration));
  auto interval = flags.integer("expected-interval-ms", 1, 3'600'000);
  if (!interval.ok()) return interval.status();
  o.health.expected_interval = milliseconds(*interval);
  auto feed_timeout = flags.integer("feed-timeout-ms", 100, 3'600'000);
  if (!feed_timeout.ok()) return feed_timeout.status();
  o.health.feed_timeout = milliseconds(*feed_timeout);
  o.health.open_grace = o.health.symbol_timeout();
  o.escalation.resubscribe_grace = o.health.symbol_timeout();
  o.escalation.reconnect_grace = 2 * o.health.symbol_timeout();
  o.escalation.min_reconnect_interval = o.health.symbol_timeout();
  o.quiet = flags.boolean("quiet");
  o.volume_check = flags.boolean("volume-check");
  if (flags.has("metrics-port")) {
    auto port = flags.integer("metrics-port", 0, 65535);
    if (!port.ok()) return port.status();
    o.metrics_port = static_cast<std::uint16_t>(*port);
  }
  return o;
}

absl::StatusOr<std::unique_ptr<Collector>> Collector::create(
    CollectorOptions options) {
  if (options.symbols.empty()) {
    return absl::InvalidArgumentError("CollectorOptions.symbols is empty");
  }
  std::unique_ptr<Collector> c(new Collector(std::move(options)));
  g_stop.store(false, std::memory_order_relaxed);  // a new run
  auto dispatcher = feedkit::Dispatcher<CollectorEvent>::create(
      {.capacity = c->options_.queue_capacity});
  if (!dispatcher.ok()) return dispatcher.status();
  c->dispatcher_ = *std::move(dispatcher);
  auto producer = c->dispatcher_->make_producer();
  if (!producer.ok()) return producer.status();
  c->producer_.emplace(*std::move(producer));
  auto health = feedkit::FeedHealth::create(c->options_.health);
  if (!health.ok()) return health.status();
  c->health_.emplace(*std::move(health));
  for (const auto& s : c->options_.symbols) c->health_->expect(s);
  auto ladder = feedkit::EscalationLadder::create(c->options_.escalation);
  if (!ladder.ok()) return ladder.status();
  c->ladder_.emplace(*std::move(ladder));
  if (c->options_.out_path == "-") {
    c->out_ = stdout;
  } else {
    c->out_ = std::fopen(c->options_.out_path.c_str(), "w");
    if (c->out_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--out ", c->options_.out_path, ": ", std::strerror(errno)));
    }
  }
  c->writer_.emplace(c->out_, c->options_.broker);
  if (c->options_.metrics_port) {
    auto metrics = CollectorMetrics::start(
        *c->options_.metrics_port, c->options_.broker,
        [d = c->dispatcher_.get()] { return d->stats(); });
    if (!metrics.ok()) return metrics.status();
    c->metrics_ = *std::move(metrics);
    std::fprintf(stderr, "[%s] metrics: %s/metrics /health /ready\n",
                 c->options_.broker.c_str(), c->metrics_->url().c_str());
  }
  return c;
}

Collector::Collector(CollectorOptions options) : options_(std::move(options)) {
  const auto wall = std::chrono::system_clock::now();
  const auto steady = SteadyClock::now();
  steady_to_unix_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           wall.time_since_epoch())
                           .count() -
                       std::chrono::duration_cast<std::chrono::nanoseconds>(
                           steady.time_since_epoch())
                           .count();
}

Collector::~Collector() {
  if (out_ != nullptr && out_ != stdout) std::fclose(out_);
}

void Collector::on_event(const MarketEvent& event, std::uint64_t epoch,
                         SteadyTime recv_time) {
  (void)producer_->try_push(Received{event, epoch, recv_time});
}

void Collector::on_gap(const feedkit::GapEvent& gap) {
  producer_->push_control(gap);
}

void Collector::attach(FeedControl control) {
  control_ = std::move(control);
  if (metrics_ && control_.stats) metrics_->attach_connection(control_.stats);
}

void Collector::stop_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void Collector::request_stop() noexcept {
  g_stop.store(true, std::memory_order_relaxed);
}

std::int64_t Collector::unix_ns(SteadyTime t) const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
             .count() +
         steady_to_unix_ns_;
}

void Collector::consume(std::vector<feedkit::Polled<CollectorEvent>>& batch) {
  for (const auto& e : batch) {
    if (const auto* gap = std::get_if<feedkit::GapEvent>(&e.value)) {
      writer_->gap(*gap, e.dropped_before(), unix_ns(gap->disconnected_at),
                   unix_ns(gap->resumed_at));
      ++summary_.gaps;
      // A new connection restarts monitoring: the outage is reported, and
      // silence (with its open grace) counts from now, so the ladder does
      // not knock down the connection that just came up for staleness that
      // built up while there was none.
      for (std::size_t i = 0; i < health_->size(); ++i) {
        health_->resume(static_cast<feedkit::SymbolId>(i), gap->resumed_at);
      }
      continue;
    }
    const Received& r = std::get<Received>(e.value);
    (void)health_->record(symbol_of(r.event), r.recv_time);
    if (const auto* trade = std::get_if<Trade>(&r.event)) {
      if (options_.volume_check) check_volume(*trade, r);
      writer_->trade(*trade, r.epoch, unix_ns(r.recv_time));
      ++summary_.trades;
    } else {
      writer_->book(std::get<Book>(r.event), r.epoch, unix_ns(r.recv_time));
      ++summary_.books;
    }
  }
}

void Collector::check_volume(const Trade& trade, const Received& r) {
  if (!trade.cumulative_volume) return;
  const std::int64_t recv_ns = unix_ns(r.recv_time);
  VolumeTrack& track = volumes_[trade.symbol];
  const std::int64_t expected = track.cumulative_volume + trade.volume;
  if (track.epoch == r.epoch && *trade.cumulative_volume > expected) {
    const std::uint64_t dropped = dispatcher_->stats().dropped();
    writer_->volume_jump({.epoch = r.epoch,
                          .symbol = trade.symbol.view(),
                          .missing_volume = *trade.cumulative_volume - expected,
                          .last_ns = track.recv_ns,
                          .next_ns = recv_ns,
                          .dropped_before = dropped - drops_reported_});
    drops_reported_ = dropped;
    ++summary_.volume_jumps;
    summary_.missing_volume += *trade.cumulative_volume - expected;
  }
  track = {r.epoch, *trade.cumulative_volume, recv_ns};
}

void Collector::check_health(SteadyTime now) {
  health_->evaluate(now, std::chrono::system_clock::now(), transitions_);
  actions_.clear();
  ladder_->step(transitions_, now, actions_);
  if (metrics_) metrics_->publish(health_->stats(), ladder_->stats());
  for (const auto& a : actions_) {
    const std::string_view name =
        a.symbol == feedkit::kFeedId ? "(feed)" : health_->name(a.symbol);
    if (!options_.quiet) {
      std::fprintf(stderr, "[%s] escalation: %s %.*s\n",
                   options_.broker.c_str(),
                   std::string(feedkit::to_string(a.step)).c_str(),
                   static_cast<int>(name.size()), name.data());
    }
    if (a.step == feedkit::EscalationStep::resubscribe &&
        control_.resubscribe && options_.keys_of) {
      // While a connection is still restoring its subscriptions, a symbol
      // that has not spoken yet is waiting for its own subscribe: an
      // unsubscribe now would cut the data its reply is starting (this
      // thread's staleness lags the client's). The ladder's next rung still
      // applies if it stays stale.
      if (restoring_subscriptions()) {
        if (!options_.quiet) {
          std::fprintf(stderr,
                       "[%s] escalation: resubscribe %.*s skipped: "
                       "subscriptions still being restored\n",
                       options_.broker.c_str(), static_cast<int>(name.size()),
                       name.data());
        }
        continue;
      }
      for (auto& key : options_.keys_of(name)) control_.resubscribe(key);
      ++summary_.resubscribes;
    } else if (a.step == feedkit::EscalationStep::reconnect &&
               control_.reconnect) {
      control_.reconnect(a.reason);
      ++summary_.ladder_reconnects;
    }
  }
}

bool Collector::restoring_subscriptions() const {
  return control_.stats &&
         control_.stats().state == feedkit::ConnectionState::subscribing;
}

void Collector::print_status(SteadyTime now) {
  const feedkit::DispatcherStats d = dispatcher_->stats();
  const feedkit::FeedHealthStats h = health_->stats();
  const double seconds =
      std::chrono::duration<double>(now - last_status_).count();
  const std::uint64_t events = summary_.trades + summary_.books;
  const double rate =
      seconds > 0
          ? static_cast<double>(events - events_at_last_status_) / seconds
          : 0.0;
  events_at_last_status_ = events;
  last_status_ = now;
  summary_.dropped = d.dropped();
  summary_.rejected_frames = rejected_frames_.load(std::memory_order_relaxed);
  if (control_.stats) summary_.parse_errors = control_.stats().parse_errors;
  if (options_.quiet) return;
  std::string line = absl::StrCat("[", options_.broker, "]");
  if (control_.stats) {
    const feedkit::ConnectionStats c = control_.stats();
    absl::StrAppend(
        &line, " ", std::string(feedkit::to_string(c.state)),
        " epoch=", c.epoch, " reconnects=", c.reconnects,
        " subs=", c.subscriptions.confirmed, "/", c.subscriptions.desired,
        " breaker=", std::string(feedkit::to_string(c.breaker.state)));
  }
  char r[32];
  std::snprintf(r, sizeof r, "%.0f", rate);
  absl::StrAppend(&line, " events/s=", r, " depth=", d.depth,
                  " drops=", d.dropped(), " stale=", h.stale,
                  " never_seen=", h.never_seen, " gaps=", summary_.gaps,
                  " volume_jumps=", summary_.volume_jumps);
  absl::StrAppend(&line, " rejected_frames=", summary_.rejected_frames,
                  " parse_errors=", summary_.parse_errors);
  std::fprintf(stderr, "%s\n", line.c_str());
}

void Collector::print_summary() const {
  std::string line = absl::StrCat(
      "[", options_.broker, "] done: trades=", summary_.trades,
      " books=", summary_.books, " gaps=", summary_.gaps,
      " volume_jumps=", summary_.volume_jumps,
      " missing_volume=", summary_.missing_volume, " drops=", summary_.dropped,
      " resubscribes=", summary_.resubscribes,
      " ladder_reconnects=", summary_.ladder_reconnects);
  absl::StrAppend(&line, " rejected_frames=", summary_.rejected_frames,
                  " parse_errors=", summary_.parse_errors);
  std::fprintf(stderr, "%s\n", line.c_str());
}

int Collector::run() {
  std::vector<feedkit::Polled<CollectorEvent>> batch;
  batch.reserve(kBatch + 1);
  const SteadyTime started = SteadyClock::now();
  last_status_ = started;
  SteadyTime next_check = started;
  while (!g_stop.load(std::memory_order_relaxed)) {
    dispatcher_->poll(batch, kBatch, kPollTimeout);
    consume(batch);
    if (metrics_) metrics_->beat();
    const SteadyTime now = SteadyClock::now();
    if (now >= next_check) {
      check_health(now);
      if (!writer_->flush()) ++summary_.write_errors;
      next_check = now + options_.status_interval;
      print_status(now);
    }
    if (options_.duration > feedkit::Duration::zero() &&
        now - started >= options_.duration) {
      break;
    }
  }
  // Stop the client first so nothing more arrives, then drain what it sent.
  if (control_.stop) {
    std::promise<void> stopped;
    control_.stop([&stopped] { stopped.set_value(); });
    if (stopped.get_future().wait_for(kStopTimeout) !=
        std::future_status::ready) {
      std::fprintf(stderr, "[%s] the client did not stop within 5 s\n",
                   options_.broker.c_str());
    }
  }
  while (dispatcher_->poll(batch, kBatch, feedkit::Duration::zero()) > 0) {
    consume(batch);
  }
  print_status(SteadyClock::now());
  if (!writer_->flush()) ++summary_.write_errors;
  print_summary();
  // The client has stopped: release it (and the status server that reads
  // it) now, while its io_context is still alive.
  metrics_.reset();
  control_ = {};
  if (summary_.write_errors != 0) {
    std::fprintf(stderr, "[%s] writing %s failed\n", options_.broker.c_str(),
                 options_.out_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace examples
