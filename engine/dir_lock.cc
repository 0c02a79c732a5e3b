// Copyright (c) Coffer authors.

#include "engine/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/catalog.h"

namespace coffer {

DirLock::~DirLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

Status DirLock::Acquire(const std::string& dir,
                        std::unique_ptr<DirLock>* lock) {
  const std::string path = dir + "/" + kLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("cannot open lock file " + path + ": " +
                           std::strerror(errno));
  }
  // flock locks belong to the open file description, so a second open in the
  // same process conflicts too, exactly like another process.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Busy("data directory " + dir +
                          " is in use by another process (lock " + path + ")");
    }
    return Status::IOError("cannot lock " + path + ": " + std::strerror(err));
  }
  lock->reset(new DirLock(fd));
  return Status::OK();
}

}  // namespace coffer
