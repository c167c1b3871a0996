// tests/support/count_allocations.h
//
// Replaces the global operator new/delete of a test binary with versions that
// count allocations while armed, so a test can prove a hot path allocates
// nothing:
//
//   feedkit::testing::AllocationCounter counter;   // arms it
//   hot_path();
//   EXPECT_EQ(counter.count(), 0);
//
// Include it from exactly one source file of a test binary: it defines the
// replacement functions (which the standard forbids declaring inline).
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace feedkit::testing {

inline std::atomic<bool> g_count_allocations{false};
inline std::atomic<long> g_allocations{0};

// Counts allocations from construction to destruction (or reset()).
class AllocationCounter {
 public:
  AllocationCounter() { reset(); }
  ~AllocationCounter() { g_count_allocations = false; }
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;

  void reset() {
    g_allocations = 0;
    g_count_allocations = true;
  }
  long count() const { return g_allocations.load(); }
};

}  // namespace feedkit::testing

// Out of line: inlined into a caller, g++ 12 -O3 pairs the malloc/free
// inside with the new-expression and reports -Wmismatched-new-delete.
[[gnu::noinline]] void* operator new(std::size_t size) {
  if (feedkit::testing::g_count_allocations.load(std::memory_order_relaxed)) {
    feedkit::testing::g_allocations.fetch_add(1);
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
