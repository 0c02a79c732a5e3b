// Copyright (c) Coffer authors.
//
// Small files replaced atomically and checked on every read: the storage of
// the cluster catalog.
//
// Layout (persistent format): magic "CofferR\x01", payload length as
// little-endian u64, payload, XXH3-64 of everything before it (little-endian
// u64). A torn or altered file fails the length or checksum check.

#ifndef COFFER_ENGINE_RECORD_FILE_H_
#define COFFER_ENGINE_RECORD_FILE_H_

#include <string>
#include <string_view>

#include "coffer/status.h"

namespace coffer {

// Replaces `path` with a record holding `payload`: writes `path`.tmp, fsyncs
// it, renames it over `path`, fsyncs the directory. After a crash `path` holds
// either the old or the new record, never a mix.
Status WriteRecordFile(const std::string& path, std::string_view payload);

// Reads and verifies a record. NotFound if `path` does not exist; Corruption
// (naming the file) when it is torn, truncated or altered.
Status ReadRecordFile(const std::string& path, std::string* payload);

// Verifies the bytes of a whole record as read from `path` (only named in
// errors) and extracts its payload: what ReadRecordFile does once the file
// is read. Corruption when they are torn, truncated or altered.
Status ParseRecordFile(const std::string& path, std::string_view bytes,
                       std::string* payload);

// Writes all of `data` to `fd` (retrying short writes and EINTR); IOError
// naming `path` otherwise.
Status WriteAll(int fd, const std::string& path, std::string_view data);

// fsyncs a directory so that entries created, renamed or removed in it
// survive a crash.
Status SyncDir(const std::string& dir);

}  // namespace coffer

#endif  // COFFER_ENGINE_RECORD_FILE_H_
