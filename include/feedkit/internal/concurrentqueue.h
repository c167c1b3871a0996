// SPDX-License-Identifier: Apache-2.0
//
// feedkit/internal/concurrentqueue.h: the one place feedkit includes moodycamel
// ConcurrentQueue. Debian installs it as <concurrentqueue/concurrentqueue.h>,
// upstream as <concurrentqueue.h>; this wrapper hides the difference. Not API.
#pragma once

#if __has_include(<concurrentqueue/concurrentqueue.h>)
#include <concurrentqueue/concurrentqueue.h>  // Debian: libconcurrentqueue-dev
// Its semaphore, not std::counting_semaphore: libstdc++ 12's loses wake-ups
// under contention (GCC PR 98033, 104928).
#include <concurrentqueue/lightweightsemaphore.h>
#else
#include <concurrentqueue.h>  // upstream layout (vcpkg, conan, a vendored copy)
#include <lightweightsemaphore.h>
#endif
