// Copyright (c) Coffer authors.

#include "engine/tenant_fs.h"

#include "coffer/cluster.h"
#include "engine/catalog.h"
#include "engine/encryption_provider.h"
#include "engine/storage.h"
#include "rocksdb/env_encryption.h"

namespace coffer {

Status OpenTenantFileSystem(const std::string& data_dir,
                            std::shared_ptr<KeyProvider> keys,
                            const std::string& tenant,
                            std::shared_ptr<rocksdb::FileSystem>* fs,
                            std::string* db_dir) {
  Status s = ValidateId("tenant", tenant);
  if (!s.ok()) return s;
  std::unique_ptr<Catalog> catalog;
  s = Catalog::Load(data_dir, std::move(keys), &catalog);
  if (!s.ok()) return s;
  if (catalog->cluster().plaintext_for_benchmarks()) {
    return Status::NotSupported("cluster in " + data_dir +
                                " stores plaintext (benchmark mode)");
  }
  catalogpb::TenantBody body;
  s = catalog->LoadTenant(tenant, &body);
  if (s.IsNotFound()) {
    return Status::NotFound("tenant '" + tenant + "' does not exist");
  }
  if (!s.ok()) return s;
  if (body.revoked()) {
    return Status::KeyRevoked("tenant '" + tenant + "' is revoked");
  }
  auto keyring = std::make_shared<Keyring>();
  for (const catalogpb::DataKey& k : body.keys()) {
    SecretKey key;
    s = catalog->UnwrapDataKey(tenant, k.version(), body.master_key_id(),
                               k.wrapped(), &key, body.home_cluster_id());
    if (!s.ok()) return s;
    keyring->Add(k.version(), key, k.version() == body.current_key_version());
  }
  auto provider =
      std::make_shared<TenantEncryptionProvider>(keyring, "'" + tenant + "'");
  *fs = rocksdb::NewEncryptedFS(BaseFileSystem(), provider);
  if (*fs == nullptr) {
    return Status::IOError("cannot create the encrypted file system");
  }
  *db_dir = catalog->TenantDbDir(tenant);
  return Status::OK();
}

}  // namespace coffer
