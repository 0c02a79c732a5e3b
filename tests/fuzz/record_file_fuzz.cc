// Copyright (c) Coffer authors.
//
// Fuzz target: the record file format of the catalog, the promotion receipt
// and the replication status file (engine/record_file.h): magic, length,
// payload, checksum. Input: a whole record file.
// Invariant: bytes that verify are exactly what WriteRecordFile writes for
// the payload they yield (read back through ReadRecordFile).

#include <string>

#include "engine/record_file.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string payload;
  if (!ParseRecordFile("fuzz-record", bytes, &payload).ok()) return 0;

  const std::string path = fuzz::ScratchDir() + "/RECORD";
  FUZZ_CHECK(WriteRecordFile(path, payload).ok());
  FUZZ_CHECK(fuzz::ReadFileOrDie(path) == bytes);
  std::string read;
  FUZZ_CHECK(ReadRecordFile(path, &read).ok() && read == payload);
  return 0;
}
