// SPDX-License-Identifier: Apache-2.0
//
// feedkit/dispatcher.h
//
// Dispatcher<T> hands events from feed threads (producers) to one consumer
// thread. It never blocks a producer, never holds more than `capacity` data
// events, and counts every event it drops, by reason:
//
//   offered  == accepted + dropped          (dropped = full + evicted +
//   contended) accepted == polled + depth              (exact whenever no push
//   is in flight)
//
// Overflow: `drop_oldest` (default: the newest data wins, the oldest queued
// data event is evicted) or `drop_newest` (the new event is rejected). Control
// events (gap markers, pushed with push_control()) are never dropped, never
// count against the capacity, and reach the consumer in order with the data of
// the producer that pushed them, each telling how many of that producer's data
// events were dropped since its previous control event.
//
// Order: FIFO per producer; no order across producers (moodycamel semantics).
// The consumer rotates between producers, so a busy feed cannot starve a quiet
// one. Never allocates in steady state: queue blocks and the caller's output
// vector are reused once warm. Producers reserve capacity in small chunks
// (fewer as the queue fills, one at a time near the bound), so try_push() has
// no locked instruction on its fast path; near the bound a producer may be
// refused while another holds a few reserved slots it has not used yet.
//
// Thread safety: make_producer(), stats() and the Producer methods are
// thread-safe, but each Producer belongs to one thread at a time (one per feed
// thread). poll() is single-consumer: one thread at a time. Memory ordering:
// everything a producer wrote before try_push()/push_control() happens-before
// the consumer reads the event returned by poll().
//
// Example:
//   auto d = feedkit::Dispatcher<Tick>::create({.capacity = 65536}).value();
//   auto feed = d->make_producer().value();      // on the feed thread
//   if (!feed.try_push(tick)) { /* dropped and counted (drop_newest) */ }
//   std::vector<feedkit::Polled<Tick>> batch;    // on the consumer thread
//   d->poll(batch, 256, std::chrono::milliseconds(100));
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "feedkit/clock.h"
#include "feedkit/internal/asymmetric_fence.h"
#include "feedkit/internal/concurrentqueue.h"

namespace feedkit {

enum class OverflowPolicy {
  drop_oldest,  // evict the oldest queued data event; the new one is accepted
  drop_newest,  // reject the new data event
};

struct DispatcherOptions {
  std::size_t capacity = 65'536;  // hard bound on queued data events; >= 1
  OverflowPolicy overflow = OverflowPolicy::drop_oldest;
  std::size_t max_producers = 8;  // Producer handles alive at once; 1..4096

  static DispatcherOptions suggested() noexcept { return {}; }

  // Returns OK, or kInvalidArgument naming the first field out of range.
  absl::Status validate() const;
};

// Returns the capacity that absorbs a consumer pause of `max_pause` while
// events arrive at `peak_events_per_second`, times `safety`:
// ceil(peak_rate × max_pause × safety), at least 1. The queue-sizing harness
// (bench/queue_sizing) checks this rule against replayed arrival profiles.
std::size_t suggested_capacity(double peak_events_per_second,
                               Duration max_pause, double safety = 2.0);

// One event returned by Dispatcher::poll().
template <class T>
class Polled {
 public:
  T value;

  Polled() = default;

  // Returns true for a control event (pushed with push_control()).
  bool is_control() const { return (meta_ & kControlBit) != 0; }

  // Returns, for a control event, how many data events of the same producer
  // were dropped (rejected or evicted) since that producer's previous control
  // event (or since it started); 0 for a data event.
  std::uint64_t dropped_before() const {
    return is_control() ? meta_ & ~kControlBit : 0;
  }

 private:
  template <class>
  friend class Dispatcher;
  static constexpr std::uint64_t kControlBit = std::uint64_t{1} << 63;

  template <class U>
  Polled(U&& v, std::uint64_t meta) : value(std::forward<U>(v)), meta_(meta) {}

  // A control event: kControlBit | dropped_before. A data event: the
  // dispatcher's tag for it (producer and sequence number), which has
  // kControlBit clear, so dropped_before() is 0 with nothing to clear.
  std::uint64_t meta_ = 0;
};

// A snapshot of the counters. Fields are read one by one without stopping the
// producers: each is exact, their relations are exact when no push is in
// flight.
struct DispatcherStats {
  std::uint64_t capacity = 0;
  std::uint64_t offered = 0;          // data events passed to try_push()
  std::uint64_t accepted = 0;         // offered − dropped()
  std::uint64_t dropped_full = 0;     // drop_newest: rejected, queue full
  std::uint64_t dropped_evicted = 0;  // drop_oldest: evicted for a newer one
  std::uint64_t dropped_contended =
      0;  // drop_oldest: eviction lost a race; new one rejected
  std::uint64_t polled = 0;      // data events returned by poll()
  std::uint64_t depth = 0;       // data events queued now
  std::uint64_t high_water = 0;  // the largest depth reached
  std::uint64_t controls_pushed = 0;
  std::uint64_t controls_polled = 0;
  Duration time_full{0};  // summed time from the first drop of an episode until
                          // poll() made room

  std::uint64_t dropped() const {
    return dropped_full + dropped_evicted + dropped_contended;
  }
  double fill_ratio() const {
    return capacity == 0
               ? 0.0
               : static_cast<double>(depth) / static_cast<double>(capacity);
  }
};

template <class T>
class Dispatcher {
  static_assert(
      std::is_nothrow_move_constructible_v<T> &&
          std::is_nothrow_move_assignable_v<T>,
      "Dispatcher<T> needs T to be nothrow-movable: a move that throws midway "
      "through a hand-off would lose or duplicate an event");
  static_assert(
      std::is_default_constructible_v<T>,
      "Dispatcher<T> needs a default-constructible T: poll() moves events into "
      "reused slots");

  struct Lane;

 public:
  // A producer's handle: one per feed thread. Move-only; destroying it returns
  // its slot to the dispatcher (its queued events stay queued).
  class Producer {
   public:
    Producer(Producer&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), lane_(other.lane_) {}
    Producer& operator=(Producer&& other) noexcept {
      if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
        lane_ = other.lane_;
      }
      return *this;
    }
    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;
    ~Producer() { release(); }

    // Offers a data event. Returns true if it was queued: under drop_oldest
    // that may have evicted the oldest queued data event (counted as
    // dropped_evicted). Returns false if it was dropped: the queue was full
    // under drop_newest (dropped_full), or, rarely, every eviction attempt
    // raced with the consumer (dropped_contended). Never blocks. Never
    // allocates once warm.
    template <class U>
    [[nodiscard]] bool try_push(U&& value) {
      static_assert(std::is_constructible_v<T, U&&>,
                    "try_push(value): T must be constructible from value");
      return owner_->push_data(*lane_, std::forward<U>(value));
    }

    // Queues a control event (a gap marker). Never dropped and not counted
    // against the capacity; delivered after every data event this producer
    // pushed before it and before every one it pushes after. Never blocks
    // beyond a short lock private to this producer; may allocate.
    void push_control(T value) {
      owner_->push_control(*lane_, std::move(value));
    }

    // Returns the producer's slot number, in [0, max_producers).
    std::size_t id() const { return lane_->id; }

   private:
    friend class Dispatcher;
    Producer(Dispatcher* owner, Lane* lane) : owner_(owner), lane_(lane) {}
    void release() {
      if (owner_ == nullptr) return;
      owner_->return_credits(*lane_);
      lane_->in_use.store(false, std::memory_order_release);
      owner_ = nullptr;
    }
    Dispatcher* owner_;
    Lane* lane_;
  };

  // Returns a dispatcher, or kInvalidArgument if `options` are out of range.
  // `clock` (which must outlive the dispatcher) times the full episodes.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> create(
      DispatcherOptions options, Clock& clock = Clock::steady()) {
    if (absl::Status s = options.validate(); !s.ok()) return s;
    return std::unique_ptr<Dispatcher>(new Dispatcher(options, clock));
  }

  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Returns a handle for one producer thread, or kResourceExhausted if
  // `max_producers` handles are alive. Thread-safe.
  absl::StatusOr<Producer> make_producer() {
    for (auto& lane : lanes_) {
      bool expected = false;
      if (lane->in_use.compare_exchange_strong(expected, true,
                                               std::memory_order_acq_rel)) {
        return Producer(this, lane.get());
      }
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        "Dispatcher: all ", lanes_.size(),
        " producer slots are in use; raise DispatcherOptions::max_producers"));
  }

  // Replaces the contents of `out` with up to `max` data events, plus the
  // control events due among them, in per-producer order. Waits up to
  // `timeout` for the first event; returns as soon as one is available.
  // Returns the number of events in `out`. Single consumer. Never allocates
  // once `out` has grown to `max` (a control event may grow it once more).
  std::size_t poll(std::vector<Polled<T>>& out, std::size_t max,
                   Duration timeout) {
    out.clear();
    if (max == 0) return 0;
    if (drain(out, max) > 0 || timeout <= Duration::zero()) return out.size();
    const SteadyTime start = SteadyClock::now();
    const SteadyTime deadline = start + timeout;
    const SteadyTime spin_until =
        start + std::min<Duration>(timeout, kSpinBeforeSleep);
    while (true) {
      // Spin a little first: under load the next event is microseconds away,
      // and a sleep would cost every producer a wake-up system call.
      for (int spin = 1; !has_work(); ++spin) {
        if (spin % 64 == 0) {
          if (SteadyClock::now() >= spin_until) break;
          std::this_thread::yield();
        }
      }
      const Duration left = deadline - SteadyClock::now();
      if (!has_work()) {
        if (left <= Duration::zero()) return 0;
        sleep_until_work(left);
      }
      if (drain(out, max) > 0 || left <= Duration::zero()) return out.size();
    }
  }

  // Returns a snapshot of the counters. Thread-safe. Never blocks.
  DispatcherStats stats() const {
    DispatcherStats s;
    s.capacity = capacity_;
    for (const auto& lane : lanes_) {
      // Every offered event was enqueued or rejected by its own producer.
      s.offered += lane->next_seq.load(std::memory_order_relaxed) +
                   lane->dropped_full.load(std::memory_order_relaxed) +
                   lane->dropped_contended.load(std::memory_order_relaxed);
      s.dropped_full += lane->dropped_full.load(std::memory_order_relaxed);
      s.dropped_evicted +=
          lane->dropped_evicted.load(std::memory_order_relaxed);
      s.dropped_contended +=
          lane->dropped_contended.load(std::memory_order_relaxed);
      s.controls_pushed +=
          lane->controls_pushed.load(std::memory_order_relaxed);
    }
    s.accepted = s.offered - s.dropped();
    s.polled = polled_.load(std::memory_order_relaxed);
    s.controls_polled = controls_polled_.load(std::memory_order_relaxed);
    const std::int64_t depth_now =
        depth(consumed_.load(std::memory_order_acquire));
    s.depth = static_cast<std::uint64_t>(std::max<std::int64_t>(0, depth_now));
    s.high_water = static_cast<std::uint64_t>(
        std::max(high_water_.load(std::memory_order_relaxed), depth_now));
    std::int64_t full_ns = time_full_ns_.load(std::memory_order_relaxed);
    if (std::int64_t since = full_since_ns_.load(std::memory_order_relaxed);
        since != 0) {
      full_ns += std::max<std::int64_t>(0, now_ns() - since);
    }
    s.time_full = Duration(full_ns);
    return s;
  }

  const DispatcherOptions& options() const { return options_; }

 private:
  // The sequence number of a data event (per producer) and its producer share
  // one word, so a queued event costs sizeof(T) + 8 bytes.
  static constexpr int kSeqBits = 48;
  static constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;
  static constexpr std::uint64_t kNoControl =
      std::numeric_limits<std::uint64_t>::max();
  static constexpr Duration kSpinBeforeSleep = std::chrono::microseconds(50);
  static constexpr int kEvictAttempts = 4;
  static constexpr std::int64_t kMaxCredits = 64;

  // A queued data event is the Polled<T> that poll() returns, so the bulk
  // dequeue moves it straight into the caller's vector. In the queue its
  // meta_ carries the tag: producer id << kSeqBits | sequence.
  using Entry = Polled<T>;
  static std::uint64_t tag_of(const Polled<T>& e) { return e.meta_; }

  struct QueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
    static const std::size_t BLOCK_SIZE = 64;
    static const std::size_t EXPLICIT_INITIAL_INDEX_SIZE = 64;
    static const std::size_t INITIAL_IMPLICIT_PRODUCER_HASH_SIZE =
        0;  // tokens only
  };
  using Queue = moodycamel::ConcurrentQueue<Entry, QueueTraits>;

  struct PendingControl {
    std::uint64_t after_seq;  // data events of this producer that precede it
    std::uint64_t rejected_before;
    T value;
  };

  // Producer-side state of one slot. Lives as long as the dispatcher, and so
  // does its moodycamel token: a slot's events are always in one sub-queue,
  // so they are dequeued in sequence order even across Producer handles.
  struct alignas(64) Lane {
    Lane(std::size_t slot, Queue& q)
        : id(slot),
          tag_base(static_cast<std::uint64_t>(slot) << kSeqBits),
          token(q) {}
    const std::size_t id;
    const std::uint64_t tag_base;  // id << kSeqBits
    moodycamel::ProducerToken token;
    std::atomic<bool> in_use{false};
    // Reserved slots run up to this sequence number (exclusive): events
    // next_seq .. credit_end - 1 need no atomic step. Owner thread only.
    std::uint64_t credit_end = 0;
    std::uint64_t rejected_since_control = 0;  // owner thread only
    // Data events enqueued, ever (= the next sequence number). Written by the
    // owner thread only; read by the consumer to know whether work is queued.
    std::atomic<std::uint64_t> next_seq{0};
    // Single-writer counters (the owner thread); read by stats().
    std::atomic<std::uint64_t> dropped_full{0};
    std::atomic<std::uint64_t> dropped_evicted{0};
    std::atomic<std::uint64_t> dropped_contended{0};
    std::atomic<std::uint64_t> controls_pushed{0};
    // One past the highest sequence number evicted from this lane (any
    // evictor).
    std::atomic<std::uint64_t> evicted_upto{0};
    std::mutex mu;
    std::deque<PendingControl> controls ABSL_GUARDED_BY(mu);
  };

  // Consumer-side view of one slot (the consumer thread only).
  struct LaneCursor {
    std::uint64_t next_control =
        kNoControl;              // after_seq of its first pending control
    std::uint64_t frontier = 0;  // one past the last delivered sequence
    std::uint64_t delivered_since_control = 0;
    std::uint64_t last_control_after = 0;
  };

  Dispatcher(const DispatcherOptions& options, Clock& clock)
      : options_(options),
        capacity_(options.capacity),
        clock_(clock),
        queue_(options.capacity +
                   2 * QueueTraits::BLOCK_SIZE * options.max_producers,
               options.max_producers, 0),
        runs_(options.max_producers),
        cursors_(options.max_producers) {
    lanes_.reserve(options.max_producers);
    for (std::size_t i = 0; i < options.max_producers; ++i) {
      lanes_.push_back(std::make_unique<Lane>(i, queue_));
    }
  }

  static void bump(std::atomic<std::uint64_t>& single_writer_counter) {
    single_writer_counter.store(
        single_writer_counter.load(std::memory_order_relaxed) + 1,
        std::memory_order_relaxed);
  }

  // Returns the data events queued now: enqueued − evicted − consumed.
  // `consumed` is consumed_ or, on the consumer thread, its own copy.
  std::int64_t depth(std::int64_t consumed) const {
    std::int64_t queued = -consumed;
    for (const auto& lane : lanes_) {
      queued += static_cast<std::int64_t>(
          lane->next_seq.load(std::memory_order_acquire) -
          lane->dropped_evicted.load(std::memory_order_acquire));
    }
    return queued;
  }

  // Takes reserved slots for `lane` in one atomic step, so the fast path of
  // try_push() has no locked instruction: up to kMaxCredits at a time, fewer as
  // the queue fills (one at a time near the bound, where counting is exact).
  // Returns false if the queue is full.
  bool take_credits(Lane& lane, std::uint64_t seq) {
    const std::int64_t room =
        capacity_ - (reserved_.load(std::memory_order_relaxed) -
                     consumed_.load(std::memory_order_acquire));
    if (room <= 0) return false;
    const std::int64_t want = std::clamp<std::int64_t>(
        room / (8 * static_cast<std::int64_t>(lanes_.size())), 1, kMaxCredits);
    const std::int64_t before =
        reserved_.fetch_add(want, std::memory_order_acq_rel) -
        consumed_.load(std::memory_order_acquire);
    const std::int64_t granted = std::min(want, capacity_ - before);
    if (granted < want) {
      reserved_.fetch_sub(want - std::max<std::int64_t>(granted, 0),
                          std::memory_order_relaxed);
    }
    if (granted <= 0) return false;
    lane.credit_end = seq + static_cast<std::uint64_t>(granted);
    return true;
  }

  void return_credits(Lane& lane) {
    const std::uint64_t seq = lane.next_seq.load(std::memory_order_relaxed);
    if (lane.credit_end > seq) {
      reserved_.fetch_sub(static_cast<std::int64_t>(lane.credit_end - seq),
                          std::memory_order_relaxed);
    }
    lane.credit_end = seq;
  }

  std::int64_t now_ns() const {
    return clock_.now().time_since_epoch().count();
  }

  template <class U>
  [[gnu::always_inline]] bool push_data(Lane& lane, U&& value) {
    const std::uint64_t seq = lane.next_seq.load(std::memory_order_relaxed);
    if (seq < lane.credit_end || take_credits(lane, seq)) {
      enqueue(lane, seq, std::forward<U>(value));
      return true;
    }
    note_full();
    if (options_.overflow == OverflowPolicy::drop_oldest) {
      // Evict one event and take over its reserved slot: the producer's own
      // oldest first (a flood evicts itself), else the head of whichever
      // sub-queue moodycamel finds first.
      for (int attempt = 0; attempt < kEvictAttempts; ++attempt) {
        Entry victim;
        if (queue_.try_dequeue_from_producer(lane.token, victim) ||
            queue_.try_dequeue(victim)) {
          note_evicted(tag_of(victim));
          bump(lane.dropped_evicted);
          enqueue(lane, seq, std::forward<U>(value));
          return true;
        }
        // The consumer drained the queue under us: there may be room now.
        if (take_credits(lane, seq)) {
          enqueue(lane, seq, std::forward<U>(value));
          return true;
        }
      }
      bump(lane.dropped_contended);
    } else {
      bump(lane.dropped_full);
    }
    ++lane.rejected_since_control;
    return false;
  }

  // Enqueues the event with sequence number `seq` (the lane's next) whose
  // slot is already reserved in reserved_.
  template <class U>
  [[gnu::always_inline]] void enqueue(Lane& lane, std::uint64_t seq,
                                      U&& value) {
    const std::uint64_t tag = lane.tag_base | seq;
    // Allocates only while warming up (new blocks, index growth); fails only
    // if malloc does, which we do not survive anyway. (enqueue_bulk() would
    // build the entry in place, but costs ~4x the instructions for one item.)
    [[maybe_unused]] bool queued =
        queue_.enqueue(lane.token, Entry(std::forward<U>(value), tag));
    lane.next_seq.store(seq + 1, std::memory_order_release);
    wake_consumer();
  }

  void note_evicted(std::uint64_t tag) {
    Lane& victim_lane = *lanes_[tag >> kSeqBits];
    const std::uint64_t upto = (tag & kSeqMask) + 1;
    std::uint64_t cur =
        victim_lane.evicted_upto.load(std::memory_order_relaxed);
    while (cur < upto && !victim_lane.evicted_upto.compare_exchange_weak(
                             cur, upto, std::memory_order_release,
                             std::memory_order_relaxed)) {
    }
  }

  void note_full() {
    if (full_since_ns_.load(std::memory_order_relaxed) != 0) return;
    std::int64_t expected = 0;
    full_since_ns_.compare_exchange_strong(expected, now_ns(),
                                           std::memory_order_relaxed);
  }

  void push_control(Lane& lane, T&& value) {
    {
      std::lock_guard lock(lane.mu);
      lane.controls.push_back(PendingControl{
          lane.next_seq.load(std::memory_order_relaxed),
          std::exchange(lane.rejected_since_control, 0), std::move(value)});
    }
    bump(lane.controls_pushed);
    controls_version_.fetch_add(1, std::memory_order_seq_cst);
    wake_consumer();
  }

  // The producer half of a Dekker hand-shake with sleep_until_work(): the
  // event is published (enqueue) before consumer_sleeping_ is read. The
  // StoreLoad barrier that needs is paid by the sleeping consumer
  // (fence_.heavy(): membarrier), so here it is only a compiler barrier.
  [[gnu::always_inline]] void wake_consumer() {
    fence_.light();
    if (consumer_sleeping_.load(std::memory_order_relaxed) &&
        consumer_sleeping_.exchange(false, std::memory_order_seq_cst)) {
      wakeup_.signal();
    }
  }

  // Consumer thread only.
  bool has_work() const {
    return depth(consumed_local_) > 0 ||
           controls_version_.load(std::memory_order_seq_cst) !=
               controls_delivered_;
  }

  // Sleeps until a producer signals or `left` elapses. A producer that finds
  // consumer_sleeping_ set claims the wake-up (exchange) and signals once, so
  // every claimed signal is taken here and none is left to cut a later sleep.
  void sleep_until_work(Duration left) {
    consumer_sleeping_.store(true, std::memory_order_seq_cst);
    fence_.heavy();  // pairs with fence_.light() in wake_consumer()
    bool signalled = false;
    if (!has_work()) {
      const auto usecs =
          std::chrono::duration_cast<std::chrono::microseconds>(left).count();
      signalled = wakeup_.wait(std::max<std::int64_t>(1, usecs));
    }
    if (consumer_sleeping_.exchange(false, std::memory_order_seq_cst))
      return;  // unclaimed
    if (!signalled)
      wakeup_.wait();  // claimed: the producer's signal is on its way
  }

  // Moves what is due into `out`; returns how many events it added.
  //
  // It takes each producer's events as one run with
  // try_dequeue_bulk_from_producer(), visiting producers round-robin from the
  // one after where the previous drain started, so a busy feed cannot starve
  // a quiet one (this replaces moodycamel's consumer-token rotation). A run is
  // in sequence order, so only its last event moves the producer's cursor;
  // events are looked at one by one only for a producer with a control event
  // pending (a gap marker: rare).
  std::size_t drain(std::vector<Polled<T>>& out, std::size_t max) {
    const std::size_t lanes = lanes_.size();
    std::size_t n = 0;
    std::size_t runs = 0;
    for (std::size_t k = 0, id = next_lane_; k < lanes && n < max; ++k) {
      Lane& lane = *lanes_[id];
      if (lane.next_seq.load(std::memory_order_acquire) >
          cursors_[id].frontier) {
        const std::size_t got = queue_.try_dequeue_bulk_from_producer(
            lane.token, std::back_inserter(out), max - n);
        if (got > 0) {
          runs_[runs++] = Run{id, out.size() - got, got};
          n += got;
        }
      }
      if (++id == lanes) id = 0;
    }
    if (++next_lane_ == lanes) next_lane_ = 0;
    if (n > 0) {
      // The deepest the queue gets is just before a drain (only producers
      // add). A short batch took everything, so the depth was n; only after a
      // full batch is it worth reading every producer's counter.
      const std::int64_t depth_before =
          n < max ? static_cast<std::int64_t>(n) : depth(consumed_local_);
      if (depth_before > high_water_.load(std::memory_order_relaxed)) {
        high_water_.store(depth_before, std::memory_order_relaxed);
      }
      consumed_local_ += static_cast<std::int64_t>(n);
      consumed_.store(consumed_local_, std::memory_order_release);
      polled_.store(polled_.load(std::memory_order_relaxed) + n,
                    std::memory_order_relaxed);
    }
    // Read after the dequeue: a control pushed before any event just dequeued
    // is visible now (the enqueue released it, the dequeue acquired it).
    const std::uint64_t version =
        controls_version_.load(std::memory_order_acquire);
    if (version != controls_seen_) {
      controls_seen_ = version;
      for (std::size_t i = 0; i < lanes; ++i) refresh_cursor(i);
    }
    std::size_t inserted = 0;  // controls put in front of earlier runs
    for (std::size_t r = 0; r < runs; ++r) {
      const Run& run = runs_[r];
      const std::size_t begin = run.begin + inserted;
      LaneCursor& c = cursors_[run.lane];
      if (c.next_control == kNoControl) {
        Polled<T>* e = out.data() + begin;
        c.frontier = (tag_of(e[run.count - 1]) & kSeqMask) + 1;
        c.delivered_since_control += run.count;
        continue;
      }
      for (std::size_t i = begin, end = begin + run.count; i < end; ++i) {
        const std::uint64_t seq = tag_of(out[i]) & kSeqMask;
        // Controls due before this event go in front of it.
        while (seq >= c.next_control) {
          out.insert(out.begin() + static_cast<std::ptrdiff_t>(i++),
                     take_control(run.lane));
          ++end;
          ++inserted;
        }
        c.frontier = seq + 1;
        ++c.delivered_since_control;
      }
    }
    if (controls_delivered_ != controls_seen_) deliver_settled_controls(out);
    end_full_episode_if_room();
    return out.size();
  }

  // Delivers controls whose preceding data are all delivered or evicted.
  void deliver_settled_controls(std::vector<Polled<T>>& out) {
    for (std::size_t id = 0; id < lanes_.size(); ++id) {
      LaneCursor& c = cursors_[id];
      while (c.next_control != kNoControl &&
             std::max(c.frontier, lanes_[id]->evicted_upto.load(
                                      std::memory_order_acquire)) >=
                 c.next_control) {
        out.push_back(take_control(id));
      }
    }
  }

  // Removes the first pending control of producer `id` and returns it ready
  // for delivery.
  Polled<T> take_control(std::size_t id) {
    Lane& lane = *lanes_[id];
    LaneCursor& c = cursors_[id];
    PendingControl pc = [&] {
      std::lock_guard lock(lane.mu);
      PendingControl front = std::move(lane.controls.front());
      lane.controls.pop_front();
      c.next_control =
          lane.controls.empty() ? kNoControl : lane.controls.front().after_seq;
      return front;
    }();
    const std::uint64_t evicted =
        (pc.after_seq - c.last_control_after) - c.delivered_since_control;
    c.last_control_after = pc.after_seq;
    c.delivered_since_control = 0;
    ++controls_delivered_;
    controls_polled_.store(controls_delivered_, std::memory_order_relaxed);
    return Polled<T>(std::move(pc.value),
                     Polled<T>::kControlBit | (pc.rejected_before + evicted));
  }

  void refresh_cursor(std::size_t id) {
    Lane& lane = *lanes_[id];
    std::lock_guard lock(lane.mu);
    cursors_[id].next_control =
        lane.controls.empty() ? kNoControl : lane.controls.front().after_seq;
  }

  void end_full_episode_if_room() {
    if (full_since_ns_.load(std::memory_order_relaxed) == 0) return;
    if (reserved_.load(std::memory_order_relaxed) - consumed_local_ >=
        capacity_)
      return;
    if (std::int64_t since =
            full_since_ns_.exchange(0, std::memory_order_relaxed);
        since != 0) {
      time_full_ns_.fetch_add(std::max<std::int64_t>(0, now_ns() - since),
                              std::memory_order_relaxed);
    }
  }

  const DispatcherOptions options_;
  const std::int64_t capacity_;
  Clock& clock_;
  Queue queue_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  // Shared by producers and the consumer, each on its own cache line.
  // depth = reserved_ − consumed_: slots reserved by producers (net of
  // rejections and evictions) minus events taken by the consumer.
  alignas(64) std::atomic<std::int64_t> reserved_{0};
  alignas(64) std::atomic<std::int64_t> consumed_{0};  // written by poll() only
  alignas(64) std::atomic<std::int64_t> high_water_{
      0};  // written by poll() only
  alignas(64) std::atomic<std::uint64_t> controls_version_{
      0};  // controls pushed, ever
  alignas(64) std::atomic<bool> consumer_sleeping_{false};
  const internal::AsymmetricFence fence_;
  moodycamel::LightweightSemaphore wakeup_{
      0, 0};  // signal() never blocks; poll() spins itself
  alignas(64) std::atomic<std::int64_t> full_since_ns_{0};  // 0: not full
  std::atomic<std::int64_t> time_full_ns_{0};

  // Consumer side.
  struct Run {  // one producer's events in a drain
    std::size_t lane;
    std::size_t begin;
    std::size_t count;
  };
  alignas(64) std::vector<Run> runs_;
  std::size_t next_lane_ = 0;  // where the next drain starts
  std::vector<LaneCursor> cursors_;
  std::int64_t consumed_local_ = 0;  // the consumer's copy of consumed_
  std::uint64_t controls_seen_ = 0;  // controls_version_ at the last refresh
  std::uint64_t controls_delivered_ =
      0;  // equals controls_seen_ when none is pending
  std::atomic<std::uint64_t> polled_{0};
  std::atomic<std::uint64_t> controls_polled_{0};
};

inline absl::Status DispatcherOptions::validate() const {
  if (capacity < 1 || capacity > (std::size_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DispatcherOptions::capacity must be in [1, 2^40], got ", capacity));
  }
  if (max_producers < 1 || max_producers > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DispatcherOptions::max_producers must be in [1, 4096], got ",
        max_producers));
  }
  if (overflow != OverflowPolicy::drop_oldest &&
      overflow != OverflowPolicy::drop_newest) {
    return absl::InvalidArgumentError(
        "DispatcherOptions::overflow is not a known policy");
  }
  return absl::OkStatus();
}

inline std::size_t suggested_capacity(double peak_events_per_second,
                                      Duration max_pause, double safety) {
  const double seconds = std::chrono::duration<double>(max_pause).count();
  const double events =
      std::ceil(std::max(0.0, peak_events_per_second) * std::max(0.0, seconds) *
                std::max(1.0, safety));
  return std::max<std::size_t>(1, static_cast<std::size_t>(events));
}

}  // namespace feedkit
