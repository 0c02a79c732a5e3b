// Copyright (c) Coffer authors.
//
// Rollback files: the writes a former primary took after its fork point,
// which the new primary does not have, saved when the former primary
// rejoins as a replica (nothing is discarded silently). One file per tenant
// and rejoin, in DIR/rollback/ (outside the tenant's directory, so it
// survives the tenant being dropped or emptied), encrypted with a random
// file key wrapped by the cluster's master key. Layout: see RollbackHeader
// in replication/proto/replication.proto.

#ifndef COFFER_REPLICATION_ROLLBACK_H_
#define COFFER_REPLICATION_ROLLBACK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coffer/key_provider.h"
#include "coffer/status.h"
#include "engine/secure.h"
#include "replication/proto/replication.pb.h"

namespace coffer {

inline constexpr char kRollbackDir[] = "rollback";

class RollbackWriter {
 public:
  // Starts DIR/rollback/<tenant>-<micros>.rbk (written as .tmp until
  // Finish). `header` names tenant, clusters, epoch, fork and kind; the key
  // fields are filled here.
  static Status Create(const std::string& data_dir,
                       replpb::RollbackHeader header, KeyProvider* keys,
                       const std::string& master_key_id,
                       std::unique_ptr<RollbackWriter>* result);
  ~RollbackWriter();
  RollbackWriter(const RollbackWriter&) = delete;
  RollbackWriter& operator=(const RollbackWriter&) = delete;

  Status Add(replpb::RollbackEntry entry);
  // Seals the last chunk, syncs, renames into place. *path: the file.
  Status Finish(std::string* path);
  uint64_t entries() const { return entries_; }

 private:
  RollbackWriter() = default;
  Status Flush(bool last);

  std::string tmp_path_;
  std::string path_;
  std::string dir_;
  int fd_ = -1;
  SecretKey key_;
  std::string file_id_;
  uint64_t chunk_index_ = 0;
  uint64_t entries_ = 0;
  replpb::RollbackChunk pending_;
  size_t pending_bytes_ = 0;
};

struct RollbackFileInfo {
  std::string path;
  replpb::RollbackHeader header;  // key fields included (wrapped only)
};

// The rollback files in DIR/rollback (optionally only `tenant`'s), oldest
// first, read without any key. A file whose header does not parse fails the
// listing, or, with `unreadable`, is appended there (the reason, naming the
// file: its tenant is unknown) and the listing goes on.
Status ListRollbackFiles(const std::string& data_dir, const std::string& tenant,
                         std::vector<RollbackFileInfo>* files,
                         std::vector<Status>* unreadable = nullptr);

// Decrypts `path` and calls `visit` for each entry, in order. WrongKey if
// `keys` cannot unwrap its key; Corruption naming the file if any chunk
// fails authentication or the file is truncated.
Status ReadRollbackFile(
    const std::string& path, KeyProvider* keys,
    const std::function<void(const replpb::RollbackEntry&)>& visit);

}  // namespace coffer

#endif  // COFFER_REPLICATION_ROLLBACK_H_
