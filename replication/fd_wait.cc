// Copyright (c) Coffer authors.

#include "replication/fd_wait.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <ctime>

namespace coffer {

bool WaitFdUntil(int fd, bool write,
                 std::chrono::steady_clock::time_point deadline) {
  struct pollfd p = {fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
  for (;;) {
    const int64_t left = std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(
               deadline - std::chrono::steady_clock::now())
               .count());
    const struct timespec timeout = {static_cast<time_t>(left / 1000000000),
                                     static_cast<long>(left % 1000000000)};
    const int r = ::ppoll(&p, 1, &timeout, nullptr);
    if (r >= 0) return r > 0;
    if (errno != EINTR) return false;
  }
}

bool WaitFd(int fd, bool write, int timeout_ms) {
  return WaitFdUntil(
      fd, write,
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms));
}

}  // namespace coffer
