// Copyright (c) Coffer authors.
//
// libcoffer_rocksdb.so: registers Coffer's encrypted file system in RocksDB's
// object library under the URI scheme "coffer://", so RocksDB's own tools
// (Debian's ldb, sst_dump, db_bench, linked against the same shared
// librocksdb) can read and write a tenant's encrypted files:
//
//   COFFER_KEY_FILE=/etc/coffer/master.key
//   LD_PRELOAD=/usr/local/lib/libcoffer_rocksdb.so
//   ldb --fs_uri=coffer://acme@/var/lib/coffer
//       --db=/var/lib/coffer/tenants/acme/db scan
//
// The URI names the tenant and the data directory. The master key comes from
// COFFER_KEY_FILE, or COFFER_KEY_DIR (+ COFFER_DEFAULT_KEY_ID, default
// "master") for a directory of keys; it is never put on a command line.
// Stop the Coffer process that owns the tenant first: RocksDB's lock allows
// one opener at a time.

#include <cstdlib>
#include <memory>
#include <string>

#include "coffer/key_provider.h"
#include "engine/tenant_fs.h"
#include "rocksdb/file_system.h"
#include "rocksdb/utilities/object_registry.h"

namespace coffer {
namespace {

constexpr char kScheme[] = "coffer";

// Keeps the encrypted file system (and the tenant's keyring) alive for as
// long as RocksDB holds this object.
class TenantFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit TenantFileSystem(std::shared_ptr<rocksdb::FileSystem> encrypted)
      : rocksdb::FileSystemWrapper(std::move(encrypted)) {}
  const char* Name() const override { return "CofferTenantFileSystem"; }
};

Status KeysFromEnvironment(std::shared_ptr<KeyProvider>* keys) {
  const char* file = std::getenv("COFFER_KEY_FILE");
  const char* dir = std::getenv("COFFER_KEY_DIR");
  if (file != nullptr && *file != '\0') return NewFileKeyProvider(file, keys);
  if (dir != nullptr && *dir != '\0') {
    const char* id = std::getenv("COFFER_DEFAULT_KEY_ID");
    return NewDirectoryKeyProvider(dir, id != nullptr ? id : "master", keys);
  }
  return Status::InvalidArgument(
      "set COFFER_KEY_FILE (or COFFER_KEY_DIR) to the master key");
}

rocksdb::FileSystem* NewTenantFileSystem(
    const std::string& uri, std::unique_ptr<rocksdb::FileSystem>* guard,
    std::string* errmsg) {
  // coffer://<tenant>@<data dir>
  const std::string prefix = std::string(kScheme) + "://";
  const size_t at = uri.find('@');
  if (uri.rfind(prefix, 0) != 0 || at == std::string::npos ||
      at + 1 >= uri.size()) {
    *errmsg = "coffer: expected coffer://<tenant>@<data dir>, got " + uri;
    return nullptr;
  }
  const std::string tenant = uri.substr(prefix.size(), at - prefix.size());
  const std::string data_dir = uri.substr(at + 1);
  std::shared_ptr<KeyProvider> keys;
  Status s = KeysFromEnvironment(&keys);
  std::shared_ptr<rocksdb::FileSystem> fs;
  std::string db_dir;
  if (s.ok()) s = OpenTenantFileSystem(data_dir, keys, tenant, &fs, &db_dir);
  if (!s.ok()) {
    *errmsg = "coffer: " + s.ToString();
    return nullptr;
  }
  guard->reset(new TenantFileSystem(std::move(fs)));
  return guard->get();
}

int RegisterFactories(rocksdb::ObjectLibrary& library, const std::string&) {
  library.AddFactory<rocksdb::FileSystem>(
      rocksdb::ObjectLibrary::PatternEntry(kScheme, false)
          .AddSeparator("://", true),
      NewTenantFileSystem);
  return 1;
}

// Runs when the library is loaded (LD_PRELOAD or dlopen).
const bool kRegistered = [] {
  RegisterFactories(*rocksdb::ObjectLibrary::Default(), "");
  return true;
}();

}  // namespace
}  // namespace coffer

// For RocksDB's ObjectRegistry::RegisterPlugin and explicit loaders.
extern "C" int coffer_rocksdb_register(rocksdb::ObjectLibrary& library,
                                       const std::string& arg) {
  return coffer::RegisterFactories(library, arg);
}
