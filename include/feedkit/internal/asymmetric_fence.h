// SPDX-License-Identifier: Apache-2.0
//
// feedkit/internal/asymmetric_fence.h: a StoreLoad barrier split unevenly
// between a hot side and a cold side. Not API.
//
// AsymmetricFence::light() (hot side, every push) is only a compiler barrier
// when heavy() (cold side, a consumer about to sleep) can make every running
// thread of the process execute a full barrier: Linux membarrier(2),
// MEMBARRIER_CMD_PRIVATE_EXPEDITED. Where that is unavailable (other systems,
// old kernels, seccomp), light() is a full seq_cst fence and heavy() one too.
// A light() paired with a heavy() orders like two seq_cst fences.
#pragma once

#include <atomic>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace feedkit::internal {

// Returns true if membarrier(2) private expedited works here (registering
// this process for it). Decided once per process.
inline bool membarrier_available() {
#if defined(__linux__) && defined(__NR_membarrier)
  static const bool available = [] {
    const long commands = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (commands < 0 || (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
      return false;
    return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                   0, 0) == 0;
  }();
  return available;
#else
  return false;
#endif
}

// A StoreLoad barrier whose cost sits on the heavy() side when the system
// allows it. Construct once, use from any thread.
class AsymmetricFence {
 public:
  AsymmetricFence() : membarrier_(membarrier_available()) {}

  // The hot side: a compiler barrier, or a full fence without membarrier.
  void light() const {
    if (membarrier_) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
  }

  // The cold side: every running thread of the process executes a full
  // barrier before this returns (or, without membarrier, a full fence here).
  void heavy() const {
#if defined(__linux__) && defined(__NR_membarrier)
    if (membarrier_ &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
      return;
    }
#endif
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }

 private:
  const bool membarrier_;
};

}  // namespace feedkit::internal
