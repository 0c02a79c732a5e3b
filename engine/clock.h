// Copyright (c) Coffer authors.
//
// Time and path helpers shared by the engine.

#ifndef COFFER_ENGINE_CLOCK_H_
#define COFFER_ENGINE_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace coffer {

// Wall-clock time, microseconds since the Unix epoch (what records store).
inline uint64_t NowMicros() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// Microseconds elapsed since `start` on the monotonic clock.
inline uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - start)
          .count());
}

}  // namespace coffer

#endif  // COFFER_ENGINE_CLOCK_H_
