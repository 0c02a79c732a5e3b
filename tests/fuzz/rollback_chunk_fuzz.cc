// Copyright (c) Coffer authors.
//
// Fuzz target: the sealed chunks of a rollback file (replication/rollback.h)
// behind their authentication. The file's header is valid and wraps a fixed
// test file key under a fixed test master key; the target seals the input
// as the file's chunks, as RollbackWriter does, so ReadRollbackFile reaches
// the chunk parse and every entry's write batch.
// Input: byte 0 picks the number of chunks (1 to 4); the rest is split into
// that many equal parts, each a chunk's plaintext (a RollbackChunk).
// Invariant: the file reads whole exactly when every chunk parses.

#include <algorithm>
#include <string>
#include <vector>

#include "engine/aead.h"
#include "replication/rollback.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/rollback_fuzz_util.h"

namespace {

constexpr char kFileId[] = "00112233445566778899aabb";

struct Fixture {
  std::shared_ptr<coffer::KeyProvider> keys;
  coffer::SecretKey file_key;
  std::string head;
  std::string path;
};

Fixture* MakeFixture() {
  using namespace coffer;
  auto* f = new Fixture;
  f->keys = fuzz::FixedKeyProvider();
  f->file_key = fuzz::MakeKey(fuzz::kFixedKeyBytes);
  replpb::RollbackHeader header;
  header.set_tenant("t1");
  header.set_cluster_id("fuzz-c1");
  header.set_new_primary("fuzz-c2");
  header.set_epoch(2);
  header.set_fork_seq(10);
  header.set_local_latest_seq(20);
  header.set_kind("batches");
  header.set_created_unix_micros(1);
  header.set_master_key_id(f->keys->DefaultKeyId());
  header.set_file_id(kFileId);
  std::string wrapped;
  fuzz::CheckOk(
      f->keys->Wrap(header.master_key_id(), f->file_key.view(),
                    std::string("coffer rollback key|fuzz-c1|t1|") + kFileId,
                    &wrapped),
      "file key wrap");
  header.set_wrapped_file_key(wrapped);
  f->head = fuzz::RollbackFileHead(header.SerializeAsString());
  const std::string dir = fuzz::ScratchDir() + "/rollback-chunks";
  fuzz::MakeDirOrDie(dir);
  f->path = dir + "/t1-1.rbk";
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static Fixture* f = MakeFixture();
  if (size == 0) return 0;
  const size_t chunks = data[0] % 4 + 1;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  const size_t part = (rest.size() + chunks - 1) / chunks;
  std::string file = f->head;
  bool all_parse = true;
  for (size_t i = 0; i < chunks; ++i) {
    const std::string_view plain =
        rest.substr(std::min(rest.size(), i * part), part);
    replpb::RollbackChunk chunk;
    all_parse &= chunk.ParseFromArray(plain.data(),
                                      static_cast<int>(plain.size()));
    std::string sealed;
    FUZZ_CHECK(AeadSeal(f->file_key, plain,
                        std::string("coffer rollback|") + kFileId + "|" +
                            std::to_string(i) + "|" +
                            (i + 1 == chunks ? "last" : "more"),
                        &sealed)
                   .ok());
    fuzz::PutU32(&file, static_cast<uint32_t>(sealed.size()));
    file += sealed;
  }
  fuzz::WriteFileOrDie(f->path, file);
  const Status s =
      ReadRollbackFile(f->path, f->keys.get(), fuzz::VisitRollbackEntry);
  fuzz::Note("ReadRollbackFile", s);
  const bool read = s.ok();
  FUZZ_CHECK(read == all_parse);
  return 0;
}
