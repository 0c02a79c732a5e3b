// Copyright (c) Coffer authors.
//
// Fuzz target: the cluster catalog record DIR/CLUSTER as Catalog::Load reads
// it (engine/catalog.h): the clear header, the catalog key wraps (unwrapped
// with a fixed test master key), the sealed cluster body; then the tenant
// records of the directory. Input: the record's payload (a ClusterRecord);
// the target writes it as a valid record file so the fuzzer works on what
// lies behind the record checksum.
// Invariant: a catalog that loads names the cluster its header names.

#include <memory>
#include <string>

#include "engine/catalog.h"
#include "engine/record_file.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static const std::shared_ptr<KeyProvider> keys = fuzz::FixedKeyProvider();
  static const std::string dir = [] {
    const std::string d = fuzz::ScratchDir() + "/catalog";
    fuzz::MakeDirOrDie(d + "/" + kTenantsDir);
    return d;
  }();

  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(WriteRecordFile(dir + "/" + kClusterFile, payload).ok());
  std::unique_ptr<Catalog> catalog;
  const Status loaded = Catalog::Load(dir, keys, &catalog);
  fuzz::Note("Catalog::Load", loaded);
  if (!loaded.ok()) return 0;
  catalogpb::ClusterRecord record;
  FUZZ_CHECK(record.ParseFromArray(data, static_cast<int>(size)));
  FUZZ_CHECK(catalog->cluster_id() == record.header().cluster_id());
  std::map<std::string, catalogpb::TenantBody> tenants;
  std::map<std::string, Status> corrupt;
  std::vector<std::string> orphans;
  FUZZ_CHECK(catalog->LoadTenants(&tenants, &corrupt, &orphans).ok());
  return 0;
}
