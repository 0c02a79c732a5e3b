// Copyright (c) Coffer authors.
//
// Fuzz target: a tenant's catalog record DIR/tenants/<id>/TENANT as
// Catalog::LoadTenant reads it (engine/catalog.h), and the data keys in it as
// the engine unwraps them when the tenant opens. The catalog is a real one
// created with a fixed test master key, so the target can seal any body
// under its catalog key and reach the body's parse.
// Input: byte 0 even: the rest is the record's payload (a TenantRecord);
// odd: the rest is the sealed body's plaintext (a TenantBody), sealed here
// for tenant "t1" as SaveTenant seals it.
// Invariant: a record that loads belongs to the tenant it was loaded for.

#include <memory>
#include <string>

#include "engine/aead.h"
#include "engine/catalog.h"
#include "engine/record_file.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

constexpr char kClusterId[] = "fuzz-c1";
constexpr char kTenant[] = "t1";

coffer::Catalog* FixedCatalog() {
  using namespace coffer;
  const std::string dir = fuzz::ScratchDir() + "/tenant-catalog";
  fuzz::MakeDirOrDie(dir);
  ClusterOptions options;
  options.cluster_id = kClusterId;
  options.region = "r1";
  options.geography = "eu";
  std::unique_ptr<Catalog> catalog;
  fuzz::CheckOk(Catalog::Create(dir, options, false, false,
                                fuzz::FixedKeyProvider(), &catalog),
                "catalog");
  fuzz::MakeDirOrDie(catalog->TenantDir(kTenant));
  return catalog.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static Catalog* catalog = FixedCatalog();
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  std::string payload;
  if (data[0] % 2 == 0) {
    payload = rest;
  } else {
    // The sealing SaveTenant does (aad: see TenantBody in catalog.proto).
    std::string sealed;
    FUZZ_CHECK(AeadSeal(catalog->catalog_key(), rest,
                        std::string("coffer tenant|") + kClusterId + "|" +
                            kTenant,
                        &sealed)
                   .ok());
    catalogpb::TenantRecord record;
    record.set_tenant_id(kTenant);
    record.set_sealed_body(sealed);
    payload = record.SerializeAsString();
  }
  const std::string path = catalog->TenantDir(kTenant) + "/" + kTenantFile;
  FUZZ_CHECK(WriteRecordFile(path, payload).ok());

  catalogpb::TenantBody body;
  const Status loaded = catalog->LoadTenant(kTenant, &body);
  fuzz::Note("LoadTenant", loaded);
  if (!loaded.ok()) return 0;
  FUZZ_CHECK(body.tenant_id() == kTenant);
  for (const catalogpb::DataKey& k : body.keys()) {
    SecretKey key;
    fuzz::Note("UnwrapDataKey",
               catalog->UnwrapDataKey(kTenant, k.version(),
                                      body.master_key_id(), k.wrapped(), &key,
                                      body.home_cluster_id()));
  }
  return 0;
}
