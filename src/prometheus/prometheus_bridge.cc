// SPDX-License-Identifier: Apache-2.0
#include "feedkit/prometheus_bridge.h"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace feedkit {
namespace internal {
namespace {  // this file's helpers: no symbol leaves it

using ::prometheus::ClientMetric;
using ::prometheus::MetricFamily;
using ::prometheus::MetricType;

// The moment of one scrape, on both clocks: maps steady times to Unix time.
struct ScrapeTime {
  SteadyTime steady;
  WallTime wall;

  // Returns the Unix time, in seconds, of steady time `t`; 0 for nullopt
  // (never), which the alert rules read as "long ago".
  double unix_seconds(const std::optional<SteadyTime>& t) const {
    if (!t) return 0;
    const auto wall_t =
        wall - std::chrono::duration_cast<WallTime::duration>(steady - *t);
    return std::chrono::duration<double>(wall_t.time_since_epoch()).count();
  }
};

using Labels =
    std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Where one source's samples of one family go: each sample carries the
// source's label (connection="kis-0") and any extra labels.
class SampleSink {
 public:
  SampleSink(MetricFamily& family, std::string_view label,
             std::string_view name, const ScrapeTime& time)
      : time(time), family_(family), label_(label), name_(name) {}

  void add(double value, Labels extra = {}) {
    ClientMetric& m = family_.metric.emplace_back();
    m.label.reserve(1 + extra.size());
    m.label.push_back({std::string(label_), std::string(name_)});
    for (const auto& [k, v] : extra) {
      m.label.push_back({std::string(k), std::string(v)});
    }
    if (family_.type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
  }

  const ScrapeTime& time;

 private:
  MetricFamily& family_;
  std::string_view label_;
  std::string_view name_;
};

// One metric family and how to read its samples from a Stats snapshot.
template <class Stats>
struct MetricSpec {
  const char* name;
  const char* help;
  MetricType type;
  void (*emit)(const Stats&, SampleSink&);
};

constexpr MetricType kCounter = MetricType::Counter;
constexpr MetricType kGauge = MetricType::Gauge;

double value_of(std::uint64_t v) { return static_cast<double>(v); }
double value_of(std::uint32_t v) { return static_cast<double>(v); }
double value_of(bool v) { return v ? 1 : 0; }
double value_of(Duration d) { return std::chrono::duration<double>(d).count(); }

template <class T>
struct MemberOf;
template <class S, class V>
struct MemberOf<V S::*> {
  using type = S;
};

// emit for a plain field: field<&ConnectionStats::reconnects>.
template <auto Member>
void field(const typename MemberOf<decltype(Member)>::type& s,
           SampleSink& out) {
  out.add(value_of(s.*Member));
}

// One gauge per value of Enum (0 .. count-1, named by to_string()): 1 for
// `current`, 0 for the others.
template <class Enum>
void state_set(SampleSink& out, Enum current, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    const auto state = static_cast<Enum>(i);
    out.add(state == current ? 1 : 0, {{"state", to_string(state)}});
  }
}
constexpr std::size_t kConnectionStates =
    static_cast<std::size_t>(ConnectionState::stopped) + 1;
constexpr std::size_t kCircuitStates =
    static_cast<std::size_t>(CircuitState::metrics_only) + 1;
constexpr std::size_t kHealthStates =
    static_cast<std::size_t>(HealthState::suspended) + 1;

// --- The tables: one line per family ----------------------------------------

using CS = ConnectionStats;
constexpr MetricSpec<CS> kConnectionMetrics[] = {
    {"feedkit_connection_state",
     "1 for the connection's current state, 0 for the others.", kGauge,
     [](const CS& s, SampleSink& out) {
       state_set(out, s.state, kConnectionStates);
     }},
    {"feedkit_connection_time_in_state_seconds",
     "Time since the connection entered its current state.", kGauge,
     field<&CS::time_in_state>},
    {"feedkit_connection_epoch",
     "The current connection epoch: +1 per connection logged in.", kGauge,
     field<&CS::epoch>},
    {"feedkit_connection_attempts_total",
     "Connect attempts the circuit breaker let through.", kCounter,
     field<&CS::connect_attempts>},
    {"feedkit_connection_connects_total",
     "Connections that reached logging_in.", kCounter, field<&CS::connects>},
    {"feedkit_connection_reconnects_total", "Connects after the first.",
     kCounter, field<&CS::reconnects>},
    {"feedkit_connection_disconnects_total",
     "Connections lost after the transport was up, by reason.", kCounter,
     [](const CS& s, SampleSink& out) {
       out.add(value_of(s.disconnects_network), {{"reason", "network"}});
       out.add(value_of(s.disconnects_server_close),
               {{"reason", "server_close"}});
       out.add(value_of(s.disconnects_stall), {{"reason", "stall"}});
       out.add(value_of(s.disconnects_token), {{"reason", "token"}});
       out.add(value_of(s.disconnects_other), {{"reason", "other"}});
     }},
    {"feedkit_connection_stalls_total",
     "Silent connections detected (idle, pong or keepalive timeout).", kCounter,
     field<&CS::stalls_detected>},
    {"feedkit_connection_handshake_failures_total",
     "Attempts that failed before the transport was up.", kCounter,
     field<&CS::handshake_failures>},
    {"feedkit_connection_login_failures_total",
     "Connections lost or refused while logging in.", kCounter,
     field<&CS::login_failures>},
    {"feedkit_connection_breaker_rejections_total",
     "Connect attempts the open circuit breaker refused.", kCounter,
     field<&CS::breaker_rejections>},
    {"feedkit_connection_credential_refreshes_total",
     "Credentials fetched again (before expiry or after a rejection).",
     kCounter, field<&CS::credential_refreshes>},
    {"feedkit_connection_frames_received_total", "Frames or messages received.",
     kCounter, field<&CS::frames_in>},
    {"feedkit_connection_frames_sent_total", "Frames or messages sent.",
     kCounter, field<&CS::frames_out>},
    {"feedkit_connection_data_frames_total", "Market-data frames received.",
     kCounter, field<&CS::data_frames>},
    {"feedkit_connection_parse_errors_total",
     "Malformed frames, counted and skipped.", kCounter,
     field<&CS::parse_errors>},
    {"feedkit_connection_late_frames_total",
     "Frames of an older connection, or data before login, discarded.",
     kCounter, field<&CS::late_frames_discarded>},
};

using SS = SubscriptionStats;
constexpr MetricSpec<SS> kSubscriptionMetrics[] = {
    {"feedkit_subscriptions", "Subscription keys by state.", kGauge,
     [](const SS& s, SampleSink& out) {
       out.add(value_of(s.waiting), {{"state", "waiting"}});
       out.add(value_of(s.pending), {{"state", "pending"}});
       out.add(value_of(s.confirmed), {{"state", "confirmed"}});
       out.add(value_of(s.rejected), {{"state", "rejected"}});
       out.add(value_of(s.unconfirmed), {{"state", "unconfirmed"}});
       out.add(value_of(s.over_cap), {{"state", "over_cap"}});
       out.add(value_of(s.unsubscribing), {{"state", "unsubscribing"}});
     }},
    {"feedkit_subscriptions_desired", "Keys wanted on the connection.", kGauge,
     field<&SS::desired>},
    {"feedkit_subscriptions_lost",
     "Keys confirmed before the last drop and not confirmed again since.",
     kGauge, field<&SS::lost>},
    {"feedkit_subscription_cap", "Most keys the connection may hold now.",
     kGauge, field<&SS::cap>},
    {"feedkit_subscription_learned_cap",
     "The cap a MAX SUBSCRIBE OVER reply taught (absent until one).", kGauge,
     [](const SS& s, SampleSink& out) {
       if (s.learned_cap) out.add(value_of(*s.learned_cap));
     }},
    {"feedkit_subscription_requests_total",
     "Subscribe and unsubscribe frames sent.", kCounter,
     [](const SS& s, SampleSink& out) {
       out.add(value_of(s.subscribes_sent), {{"kind", "subscribe"}});
       out.add(value_of(s.unsubscribes_sent), {{"kind", "unsubscribe"}});
     }},
    {"feedkit_subscription_replies_total",
     "Broker replies to subscription requests, by kind.", kCounter,
     [](const SS& s, SampleSink& out) {
       out.add(value_of(s.acks), {{"reply", "ack"}});
       out.add(value_of(s.already_subscribed),
               {{"reply", "already_subscribed"}});
       out.add(value_of(s.rejections), {{"reply", "rejected"}});
       out.add(value_of(s.retryable_errors), {{"reply", "retryable_error"}});
       out.add(value_of(s.max_subscription_replies),
               {{"reply", "max_subscriptions"}});
       out.add(value_of(s.unsubscribe_acks), {{"reply", "unsubscribe_ack"}});
       out.add(value_of(s.unexpected_replies), {{"reply", "unexpected"}});
     }},
    {"feedkit_subscription_retries_total",
     "Subscribes re-sent on the same connection.", kCounter,
     field<&SS::retries>},
    {"feedkit_subscription_timeouts_total",
     "Requests left unanswered within their timeout.", kCounter,
     [](const SS& s, SampleSink& out) {
       out.add(value_of(s.timeouts), {{"kind", "subscribe"}});
       out.add(value_of(s.unsubscribe_timeouts), {{"kind", "unsubscribe"}});
     }},
    {"feedkit_subscription_max_confirm_latency_seconds",
     "The slowest subscribe-to-confirmation time seen.", kGauge,
     field<&SS::max_confirm_latency>},
    {"feedkit_subscription_last_restore_seconds",
     "How long the last connection took to confirm every key.", kGauge,
     field<&SS::last_restore_time>},
};

using BS = BackoffStats;
constexpr MetricSpec<BS> kBackoffMetrics[] = {
    {"feedkit_backoff_attempts_total", "Reconnect attempts scheduled.",
     kCounter, field<&BS::attempts>},
    {"feedkit_backoff_episode_attempts",
     "Attempts since the connection was last stable.", kGauge,
     field<&BS::episode_attempts>},
    {"feedkit_backoff_delay_seconds", "The last backoff delay drawn.", kGauge,
     field<&BS::current_delay>},
    {"feedkit_backoff_resets_total",
     "Backoff resets after a stable connection.", kCounter, field<&BS::resets>},
    {"feedkit_backoff_budget_deferred_total",
     "Attempts the venue's attempt budget pushed later.", kCounter,
     field<&BS::budget_deferred>},
    {"feedkit_backoff_budget_deferred_seconds_total",
     "Total time attempts were pushed later by the budget.", kCounter,
     field<&BS::budget_deferred_for>},
};

using BR = CircuitBreakerStats;
constexpr MetricSpec<BR> kBreakerMetrics[] = {
    {"feedkit_breaker_state",
     "1 for the circuit breaker's current state, 0 for the others.", kGauge,
     [](const BR& s, SampleSink& out) {
       state_set(out, s.state, kCircuitStates);
     }},
    {"feedkit_breaker_transitions_total", "State transitions.", kCounter,
     field<&BR::transitions>},
    {"feedkit_breaker_rejected_calls_total",
     "Calls rejected while open (or half-open with no probe left).", kCounter,
     field<&BR::not_permitted_calls>},
    {"feedkit_breaker_late_results_total",
     "Results of calls admitted before the last transition (ignored).",
     kCounter, field<&BR::late_results>},
    {"feedkit_breaker_released_permits_total", "Permits handed back unused.",
     kCounter, field<&BR::released_permits>},
    {"feedkit_breaker_failure_rate_percent",
     "Failed calls in the window, percent (absent below minimum_calls).",
     kGauge,
     [](const BR& s, SampleSink& out) {
       if (s.failure_rate >= 0) out.add(s.failure_rate);
     }},
    {"feedkit_breaker_slow_call_rate_percent",
     "Slow calls in the window, percent (absent below minimum_calls).", kGauge,
     [](const BR& s, SampleSink& out) {
       if (s.slow_call_rate >= 0) out.add(s.slow_call_rate);
     }},
    {"feedkit_breaker_buffered_calls", "Call results in the window.", kGauge,
     field<&BR::buffered_calls>},
    {"feedkit_breaker_failed_calls", "Failed call results in the window.",
     kGauge, field<&BR::failed_calls>},
    {"feedkit_breaker_consecutive_failures",
     "Failures in a row since the last success.", kGauge,
     field<&BR::consecutive_failures>},
};

using DS = DispatcherStats;
constexpr MetricSpec<DS> kDispatcherMetrics[] = {
    {"feedkit_dispatcher_capacity", "Most data events the queue holds.", kGauge,
     field<&DS::capacity>},
    {"feedkit_dispatcher_depth", "Data events queued now.", kGauge,
     field<&DS::depth>},
    {"feedkit_dispatcher_high_water", "The largest depth reached.", kGauge,
     field<&DS::high_water>},
    {"feedkit_dispatcher_fill_ratio", "depth / capacity.", kGauge,
     [](const DS& s, SampleSink& out) { out.add(s.fill_ratio()); }},
    {"feedkit_dispatcher_offered_total", "Data events offered by producers.",
     kCounter, field<&DS::offered>},
    {"feedkit_dispatcher_accepted_total", "Data events queued.", kCounter,
     field<&DS::accepted>},
    {"feedkit_dispatcher_polled_total", "Data events handed to the consumer.",
     kCounter, field<&DS::polled>},
    {"feedkit_dispatcher_dropped_total",
     "Data events dropped, by reason (full: rejected by drop_newest; "
     "evicted: pushed out by drop_oldest; contended: lost an eviction race).",
     kCounter,
     [](const DS& s, SampleSink& out) {
       out.add(value_of(s.dropped_full), {{"reason", "full"}});
       out.add(value_of(s.dropped_evicted), {{"reason", "evicted"}});
       out.add(value_of(s.dropped_contended), {{"reason", "contended"}});
     }},
    {"feedkit_dispatcher_controls_pushed_total",
     "Control events (gap markers) pushed; never dropped.", kCounter,
     field<&DS::controls_pushed>},
    {"feedkit_dispatcher_controls_polled_total",
     "Control events handed to the consumer.", kCounter,
     field<&DS::controls_polled>},
    {"feedkit_dispatcher_full_seconds_total",
     "Time the queue spent full (from the first drop until room was made).",
     kCounter, field<&DS::time_full>},
};

using FS = FeedHealthStats;
constexpr MetricSpec<FS> kFeedMetrics[] = {
    {"feedkit_feed_symbols",
     "Expected symbols by health state, as of the last evaluation.", kGauge,
     [](const FS& s, SampleSink& out) {
       out.add(static_cast<double>(s.never_seen), {{"state", "never_seen"}});
       out.add(static_cast<double>(s.fresh), {{"state", "fresh"}});
       out.add(static_cast<double>(s.suspect), {{"state", "suspect"}});
       out.add(static_cast<double>(s.stale), {{"state", "stale"}});
       out.add(static_cast<double>(s.suspended), {{"state", "suspended"}});
     }},
    {"feedkit_feed_expected_symbols", "Symbols expected on the feed.", kGauge,
     [](const FS& s, SampleSink& out) {
       out.add(static_cast<double>(s.symbols));
     }},
    {"feedkit_feed_never_received_symbols",
     "Expected symbols with no event received yet, whatever their state.",
     kGauge,
     [](const FS& s, SampleSink& out) {
       out.add(static_cast<double>(s.never_received));
     }},
    {"feedkit_feed_state",
     "1 for the whole feed's current health state, 0 for the others.", kGauge,
     [](const FS& s, SampleSink& out) {
       state_set(out, s.feed, kHealthStates);
     }},
    {"feedkit_feed_in_session",
     "1 while the trading calendar has a session open (last evaluation).",
     kGauge, field<&FS::in_session>},
    {"feedkit_feed_last_event_timestamp_seconds",
     "Unix time of the newest event received (0: none yet).", kGauge,
     [](const FS& s, SampleSink& out) {
       out.add(out.time.unix_seconds(s.last_record));
     }},
    {"feedkit_feed_last_evaluation_timestamp_seconds",
     "Unix time of the last health evaluation (0: none yet).", kGauge,
     [](const FS& s, SampleSink& out) {
       out.add(out.time.unix_seconds(s.evaluated_at));
     }},
    {"feedkit_feed_records_total", "Events recorded for expected symbols.",
     kCounter, field<&FS::records>},
    {"feedkit_feed_unexpected_records_total",
     "Events for symbols never expected, dropped.", kCounter,
     field<&FS::unexpected_records>},
    {"feedkit_feed_auto_expected_total",
     "Symbols expected on their first event (auto_expect_unknown).", kCounter,
     field<&FS::auto_expected>},
    {"feedkit_feed_symbol_transitions_total", "Symbol state transitions.",
     kCounter, field<&FS::transitions>},
    {"feedkit_feed_transitions_total", "Whole-feed state transitions.",
     kCounter, field<&FS::feed_transitions>},
    {"feedkit_feed_evaluations_total", "Health evaluations.", kCounter,
     field<&FS::evaluations>},
};

using SH = std::vector<SymbolHealth>;
constexpr MetricSpec<SH> kSymbolMetrics[] = {
    {"feedkit_symbol_state",
     "1 for the symbol's current health state, 0 for the others (opt-in).",
     kGauge,
     [](const SH& symbols, SampleSink& out) {
       for (const SymbolHealth& s : symbols) {
         for (std::size_t i = 0; i < kHealthStates; ++i) {
           const auto state = static_cast<HealthState>(i);
           out.add(state == s.state ? 1 : 0,
                   {{"symbol", s.symbol}, {"state", to_string(state)}});
         }
       }
     }},
    {"feedkit_symbol_last_event_timestamp_seconds",
     "Unix time of the symbol's newest event (0: none yet; opt-in).", kGauge,
     [](const SH& symbols, SampleSink& out) {
       for (const SymbolHealth& s : symbols) {
         out.add(out.time.unix_seconds(s.last_received),
                 {{"symbol", s.symbol}});
       }
     }},
};

using ES = EscalationStats;
constexpr MetricSpec<ES> kEscalationMetrics[] = {
    {"feedkit_escalation_resubscribes_total",
     "Stale symbols resubscribed (first rung).", kCounter,
     field<&ES::resubscribes>},
    {"feedkit_escalation_reconnects_total",
     "Reconnects asked for stale symbols or a stale feed.", kCounter,
     field<&ES::reconnects>},
    {"feedkit_escalation_feed_reconnects_total",
     "Of those, reconnects for the whole feed.", kCounter,
     field<&ES::feed_reconnects>},
    {"feedkit_escalation_coalesced_total",
     "Reconnects asked for within min_reconnect_interval (not repeated).",
     kCounter, field<&ES::coalesced>},
    {"feedkit_escalation_exhausted_total",
     "Symbols the ladder gave up on (still stale, no more actions).", kCounter,
     field<&ES::exhausted>},
    {"feedkit_escalation_recovered_total",
     "Symbols that recovered, by the rung they had reached.", kCounter,
     [](const ES& s, SampleSink& out) {
       out.add(value_of(s.recovered_after_resubscribe),
               {{"rung", "resubscribe"}});
       out.add(value_of(s.recovered_after_reconnect), {{"rung", "reconnect"}});
       out.add(value_of(s.recovered_exhausted), {{"rung", "exhausted"}});
     }},
    {"feedkit_escalation_climbing_symbols", "Symbols on the ladder now.",
     kGauge,
     [](const ES& s, SampleSink& out) {
       out.add(static_cast<double>(s.climbing));
     }},
};

// --- Collection -------------------------------------------------------------

template <class Stats>
using Snapshots = std::vector<std::pair<std::string_view, Stats>>;

template <class Stats>
Snapshots<Stats> take(const NamedSources<Stats>& sources) {
  Snapshots<Stats> out;
  out.reserve(sources.size());
  for (const auto& [name, stats] : sources) out.emplace_back(name, stats());
  return out;
}

// Appends one family per spec holding every snapshot's samples.
template <class Stats, std::size_t N>
void append(std::vector<MetricFamily>& out, const MetricSpec<Stats> (&specs)[N],
            std::string_view label, const Snapshots<Stats>& snapshots,
            const ScrapeTime& time) {
  if (snapshots.empty()) return;
  for (const MetricSpec<Stats>& spec : specs) {
    MetricFamily family{spec.name, spec.help, spec.type, {}};
    for (const auto& [name, stats] : snapshots) {
      SampleSink sink(family, label, name, time);
      spec.emit(stats, sink);
    }
    if (!family.metric.empty()) out.push_back(std::move(family));
  }
}

// The parts of each connection's snapshot that share families with other
// sources or have their own tables.
template <class Part>
Snapshots<Part> parts(const Snapshots<ConnectionStats>& connections,
                      Part ConnectionStats::*member) {
  Snapshots<Part> out;
  out.reserve(connections.size());
  for (const auto& [name, stats] : connections) {
    out.emplace_back(name, stats.*member);
  }
  return out;
}

template <class Stats>
bool contains(const NamedSources<Stats>& sources, std::string_view name) {
  for (const auto& [existing, stats] : sources) {
    if (existing == name) return true;
  }
  return false;
}

}  // namespace
}  // namespace internal

PrometheusBridge::PrometheusBridge(Clock& clock) : clock_(clock) {}

PrometheusBridge::~PrometheusBridge() = default;

template <class Stats>
absl::Status PrometheusBridge::add(internal::NamedSources<Stats>& sources,
                                   const char* label, std::string name,
                                   std::function<Stats()> stats,
                                   bool name_taken) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("PrometheusBridge: the ", label, " name is empty"));
  }
  if (!stats) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PrometheusBridge: no stats function for ", label, " '", name, "'"));
  }
  if (name_taken) {
    return absl::AlreadyExistsError(absl::StrCat(
        "PrometheusBridge: ", label, " '", name, "' is already registered"));
  }
  sources.emplace_back(std::move(name), std::move(stats));
  return absl::OkStatus();
}

absl::Status PrometheusBridge::add_connection(
    std::string name, std::function<ConnectionStats()> stats) {
  std::lock_guard lock(mu_);
  // Its breaker is exported as breaker=<name>: breaker names are taken too.
  const bool taken = internal::contains(connections_, name) ||
                     internal::contains(breakers_, name);
  return add(connections_, "connection", std::move(name), std::move(stats),
             taken);
}

absl::Status PrometheusBridge::add_dispatcher(
    std::string name, std::function<DispatcherStats()> stats) {
  std::lock_guard lock(mu_);
  const bool taken = internal::contains(dispatchers_, name);
  return add(dispatchers_, "dispatcher", std::move(name), std::move(stats),
             taken);
}

absl::Status PrometheusBridge::add_feed_health(
    std::string name, std::function<FeedHealthStats()> stats) {
  std::lock_guard lock(mu_);
  const bool taken = internal::contains(feeds_, name);
  return add(feeds_, "feed", std::move(name), std::move(stats), taken);
}

absl::Status PrometheusBridge::add_symbol_health(
    std::string name, std::function<std::vector<SymbolHealth>()> symbols) {
  std::lock_guard lock(mu_);
  const bool taken = internal::contains(symbols_, name);
  return add(symbols_, "symbol health feed", std::move(name),
             std::move(symbols), taken);
}

absl::Status PrometheusBridge::add_breaker(
    std::string name, std::function<CircuitBreakerStats()> stats) {
  std::lock_guard lock(mu_);
  const bool taken = internal::contains(breakers_, name) ||
                     internal::contains(connections_, name);
  return add(breakers_, "breaker (or connection)", std::move(name),
             std::move(stats), taken);
}

absl::Status PrometheusBridge::add_escalation(
    std::string name, std::function<EscalationStats()> stats) {
  std::lock_guard lock(mu_);
  const bool taken = internal::contains(escalations_, name);
  return add(escalations_, "escalation", std::move(name), std::move(stats),
             taken);
}

std::vector<::prometheus::MetricFamily> PrometheusBridge::Collect() const {
  using namespace internal;  // NOLINT(google-build-using-namespace): tables
  std::vector<MetricFamily> out;
  {
    std::lock_guard lock(mu_);
    const ScrapeTime time{clock_.now(), std::chrono::system_clock::now()};
    const auto connections = take(connections_);
    append(out, kConnectionMetrics, "connection", connections, time);
    append(out, kSubscriptionMetrics, "connection",
           parts(connections, &ConnectionStats::subscriptions), time);
    append(out, kBackoffMetrics, "connection",
           parts(connections, &ConnectionStats::backoff), time);
    // Standalone breakers and the connections' own share the families.
    auto breakers = take(breakers_);
    for (auto& b : parts(connections, &ConnectionStats::breaker)) {
      breakers.push_back(std::move(b));
    }
    append(out, kBreakerMetrics, "breaker", breakers, time);
    append(out, kDispatcherMetrics, "dispatcher", take(dispatchers_), time);
    append(out, kFeedMetrics, "feed", take(feeds_), time);
    append(out, kSymbolMetrics, "feed", take(symbols_), time);
    append(out, kEscalationMetrics, "connection", take(escalations_), time);
  }
  for (auto& family : registry_.Collect()) out.push_back(std::move(family));
  return out;
}

std::string PrometheusBridge::serialize() const {
  return ::prometheus::TextSerializer().Serialize(Collect());
}

}  // namespace feedkit
