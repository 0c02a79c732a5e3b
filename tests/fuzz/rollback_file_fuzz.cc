// Copyright (c) Coffer authors.
//
// Fuzz target: a rollback file DIR/rollback/<tenant>-<micros>.rbk
// (replication/rollback.h) as `coffer rollback show` (ListRollbackFiles,
// no key) and `coffer rollback export` (ReadRollbackFile, with a fixed test
// master key) read it. Input: the whole file.
// Invariant: a file whose header the listing refuses is refused by the
// reader too.

#include <string>
#include <vector>

#include "replication/rollback.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/rollback_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static const std::shared_ptr<KeyProvider> keys = fuzz::FixedKeyProvider();
  static const std::string dir = [] {
    const std::string d = fuzz::ScratchDir() + "/rollback-data";
    fuzz::MakeDirOrDie(d + "/" + kRollbackDir);
    return d;
  }();
  const std::string path = dir + "/" + kRollbackDir + "/t1-1.rbk";
  fuzz::WriteFileOrDie(
      path, std::string_view(reinterpret_cast<const char*>(data), size));

  std::vector<RollbackFileInfo> files;
  const Status list = ListRollbackFiles(dir, "", &files);
  fuzz::Note("ListRollbackFiles", list);
  const bool listed = list.ok();
  if (listed) FUZZ_CHECK(files.size() == 1 && files[0].path == path);
  const Status s = ReadRollbackFile(path, keys.get(), fuzz::VisitRollbackEntry);
  fuzz::Note("ReadRollbackFile", s);
  const bool read = s.ok();
  if (!listed) FUZZ_CHECK(!read);
  return 0;
}
