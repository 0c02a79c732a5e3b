// Copyright (c) Coffer authors.
//
// Waiting for a socket, shared by the replication channel and the admin
// channel.

#ifndef COFFER_REPLICATION_FD_WAIT_H_
#define COFFER_REPLICATION_FD_WAIT_H_

#include <chrono>

namespace coffer {

// Waits until `fd` is readable (writable if `write`) or `deadline` passes,
// to the nanosecond: poll's whole milliseconds would turn the last fraction
// of a wait, and all of a 1 ms one, into a busy loop or an early timeout.
// Restarts after a signal. False on timeout or a poll error.
bool WaitFdUntil(int fd, bool write,
                 std::chrono::steady_clock::time_point deadline);

// The same for `timeout_ms` from now.
bool WaitFd(int fd, bool write, int timeout_ms);

}  // namespace coffer

#endif  // COFFER_REPLICATION_FD_WAIT_H_
