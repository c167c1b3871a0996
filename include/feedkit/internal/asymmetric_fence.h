// SPDX-License-Identifier: Apache-2.0
//
// feedkit/internal/asymmetric_fence.h: a StoreLoad barrier split unevenly
// between a hot side and a cold side. Not API.
//
// light_fence() (hot side, every push) is only a compiler barrier when
// heavy_fence() (cold side, a consumer about to sleep) can make every running
// thread of the process execute a full barrier: Linux membarrier(2),
// MEMBARRIER_CMD_PRIVATE_EXPEDITED. Where that is unavailable (other systems,
// old kernels, seccomp), light_fence() is a full seq_cst fence and
// heavy_fence() one too. A light_fence() paired with a heavy_fence() orders
// like two seq_cst fences.
#pragma once

#include <atomic>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace feedkit::internal {

// Returns true if heavy_fence() uses membarrier. Decided once per process.
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

inline void light_fence() {
  if (membarrier_available()) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

inline void heavy_fence() {
#if defined(__linux__) && defined(__NR_membarrier)
  if (membarrier_available() &&
      syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
    return;
  }
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace feedkit::internal
