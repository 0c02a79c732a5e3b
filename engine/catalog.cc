// Copyright (c) Coffer authors.

#include "engine/catalog.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "coffer/cluster.h"
#include "engine/aead.h"
#include "engine/clock.h"
#include "engine/record_file.h"

namespace coffer {

namespace {

constexpr uint32_t kCatalogFormatVersion = 1;

std::string CatalogKeyAad(const std::string& cluster) {
  return "coffer catalog key|" + cluster;
}
// The clear header's fields that matter are bound into the sealed body, so
// editing them (say, pointing new tenants at another master key) is detected.
std::string ClusterAad(const catalogpb::ClusterHeader& h) {
  return "coffer cluster|" + h.cluster_id() + "|" + h.master_key_id() + "|" +
         h.rotating_to() + "|" + std::to_string(h.format_version());
}
std::string TenantAad(const std::string& cluster, const std::string& tenant) {
  return "coffer tenant|" + cluster + "|" + tenant;
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IOError("cannot create directory " + path + ": " +
                           std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

Status Catalog::Create(const std::string& dir, const ClusterOptions& options,
                       bool plaintext_for_benchmarks,
                       bool rocksdb_ctr_for_benchmarks,
                       std::shared_ptr<KeyProvider> keys,
                       std::unique_ptr<Catalog>* result) {
  const std::string path = dir + "/" + kClusterFile;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists("directory " + dir +
                                 " already holds a Coffer cluster");
  }
  std::unique_ptr<Catalog> c(new Catalog());
  c->dir_ = dir;
  c->keys_ = std::move(keys);
  Status s = SecretKey::Random(&c->catalog_key_);
  if (!s.ok()) return s;
  c->header_.set_format_version(kCatalogFormatVersion);
  c->header_.set_cluster_id(options.cluster_id);
  c->cluster_id_ = options.cluster_id;
  c->header_.set_master_key_id(c->keys_->DefaultKeyId());
  s = c->AddCatalogKeyWrap(c->header_.master_key_id(), /*persist=*/false);
  if (!s.ok()) return s;

  catalogpb::ClusterBody body;
  body.set_region(options.region);
  body.set_geography(options.geography);
  body.set_role(options.replica ? "replica" : "primary");
  body.set_epoch(1);
  body.set_max_tenants(options.limits.max_tenants);
  body.set_default_tenant_quota(options.limits.default_tenant_quota);
  body.set_cluster_quota(options.limits.cluster_quota);
  body.set_created_unix_micros(NowMicros());
  body.set_plaintext_for_benchmarks(plaintext_for_benchmarks);
  body.set_rocksdb_ctr_for_benchmarks(rocksdb_ctr_for_benchmarks);
  s = MakeDir(dir + "/" + kTenantsDir);
  if (s.ok()) s = c->SaveCluster(body);
  if (!s.ok()) return s;
  *result = std::move(c);
  return Status::OK();
}

Status Catalog::Load(const std::string& dir, std::shared_ptr<KeyProvider> keys,
                     std::unique_ptr<Catalog>* result) {
  const std::string path = dir + "/" + kClusterFile;
  std::string payload;
  Status s = ReadRecordFile(path, &payload);
  if (s.IsNotFound()) {
    return Status::NotFound("no Coffer cluster in " + dir +
                            " (create one with: coffer init)");
  }
  if (!s.ok()) return s;
  catalogpb::ClusterRecord record;
  if (!record.ParseFromString(payload)) {
    return Status::Corruption(path + " passes its checksum but does not parse");
  }
  if (record.header().format_version() != kCatalogFormatVersion) {
    return Status::NotSupported(
        path + " has catalog format " +
        std::to_string(record.header().format_version()) +
        "; this build reads format " + std::to_string(kCatalogFormatVersion));
  }
  std::unique_ptr<Catalog> c(new Catalog());
  c->dir_ = dir;
  c->keys_ = std::move(keys);
  c->header_ = record.header();
  c->cluster_id_ = c->header_.cluster_id();
  // Any wrap will do (two exist while a master-key rotation is under way);
  // report the failure of the first if none unwraps.
  std::string raw;
  s = Status::Corruption(path + " holds no wrapped catalog key");
  for (const catalogpb::KeyWrap& w : c->header_.catalog_key_wraps()) {
    Status t = c->keys_->Unwrap(w.key_id(), w.wrapped(),
                                CatalogKeyAad(c->header_.cluster_id()), &raw);
    if (t.ok()) {
      s = t;
      break;
    }
    if (s.IsCorruption()) s = t;
  }
  if (!s.ok()) {
    if (s.IsWrongKey()) {
      return Status::WrongKey("the master key does not open cluster '" +
                              c->header_.cluster_id() + "' in " + dir + " (" +
                              s.message() + "); nothing was modified");
    }
    return s;
  }
  s = SecretKey::FromBytes(raw, &c->catalog_key_);
  Wipe(&raw);
  if (!s.ok()) return Status::Corruption(path + ": catalog key has wrong size");
  std::string body;
  s = AeadOpen(c->catalog_key_, record.sealed_body(), ClusterAad(c->header_),
               &body);
  if (!s.ok() || !c->body_.ParseFromString(body)) {
    return Status::Corruption(path + ": cluster record fails authentication");
  }
  *result = std::move(c);
  return Status::OK();
}

Status Catalog::SaveCluster(const catalogpb::ClusterBody& body) {
  catalogpb::ClusterRecord record;
  *record.mutable_header() = header_;
  std::string sealed;
  Status s = AeadSeal(catalog_key_, body.SerializeAsString(),
                      ClusterAad(header_), &sealed);
  if (!s.ok()) return s;
  record.set_sealed_body(sealed);
  s = WriteRecordFile(dir_ + "/" + kClusterFile, record.SerializeAsString());
  if (s.ok()) body_ = body;
  return s;
}

Status Catalog::AddCatalogKeyWrap(const std::string& key_id, bool persist) {
  for (const catalogpb::KeyWrap& w : header_.catalog_key_wraps()) {
    if (w.key_id() == key_id) return Status::OK();
  }
  std::string wrapped;
  Status s = keys_->Wrap(key_id, catalog_key_.view(),
                         CatalogKeyAad(header_.cluster_id()), &wrapped);
  if (!s.ok()) return s;
  catalogpb::KeyWrap* w = header_.add_catalog_key_wraps();
  w->set_key_id(key_id);
  w->set_wrapped(wrapped);
  return persist ? SaveCluster(body_) : Status::OK();
}

Status Catalog::BeginMasterRotation(const std::string& new_key_id) {
  const catalogpb::ClusterHeader old = header_;
  header_.set_rotating_to(new_key_id);
  Status s = AddCatalogKeyWrap(new_key_id, /*persist=*/true);
  if (!s.ok()) header_ = old;  // nothing changes unless it is on disk
  return s;
}

Status Catalog::FinishMasterRotation() {
  const std::string next = header_.rotating_to();
  catalogpb::ClusterHeader header = header_;
  header.clear_catalog_key_wraps();
  for (const catalogpb::KeyWrap& w : header_.catalog_key_wraps()) {
    if (w.key_id() == next) *header.add_catalog_key_wraps() = w;
  }
  if (header.catalog_key_wraps_size() != 1) {
    return Status::Corruption("master-key rotation to " + next +
                              " lost its catalog key wrap");
  }
  header.set_master_key_id(next);
  header.clear_rotating_to();
  catalogpb::ClusterHeader old = header_;
  header_ = header;
  Status s = SaveCluster(body_);
  if (!s.ok()) header_ = old;
  return s;
}

std::string Catalog::TenantDir(const std::string& id) const {
  return dir_ + "/" + kTenantsDir + "/" + id;
}

std::string Catalog::TenantDbDir(const std::string& id) const {
  return TenantDir(id) + "/" + kTenantDbDir;
}

Status Catalog::LoadTenant(const std::string& id,
                           catalogpb::TenantBody* body) const {
  const std::string path = TenantDir(id) + "/" + kTenantFile;
  std::string payload;
  Status s = ReadRecordFile(path, &payload);
  if (!s.ok()) return s;
  catalogpb::TenantRecord record;
  if (!record.ParseFromString(payload) || record.tenant_id() != id) {
    return Status::Corruption("tenant record " + path +
                              " does not belong to tenant '" + id + "'");
  }
  std::string plain;
  s = AeadOpen(catalog_key_, record.sealed_body(), TenantAad(cluster_id(), id),
               &plain);
  if (!s.ok() || !body->ParseFromString(plain) || body->tenant_id() != id) {
    Wipe(&plain);
    return Status::Corruption("tenant record " + path +
                              " fails authentication (altered or swapped)");
  }
  Wipe(&plain);
  return Status::OK();
}

Status Catalog::LoadTenants(
    std::map<std::string, catalogpb::TenantBody>* tenants,
    std::map<std::string, Status>* corrupt,
    std::vector<std::string>* orphans) const {
  const std::string root = dir_ + "/" + kTenantsDir;
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) {
    return Status::IOError("cannot list " + root + ": " + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    // Only real directories named like a tenant are tenants; anything else
    // (lost+found, a symlink, an operator's copy) is never touched.
    struct stat st;
    if (!ValidateId("tenant", name).ok() ||
        ::lstat((root + "/" + name).c_str(), &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
      continue;
    }
    names.push_back(std::move(name));
  }
  ::closedir(d);
  for (const std::string& id : names) {
    catalogpb::TenantBody body;
    Status s = LoadTenant(id, &body);
    if (s.IsNotFound()) {
      // No record: left by a create or drop that crashed, or the record was
      // deleted. Either way no key for anything in it exists any more.
      if (orphans != nullptr) orphans->push_back(id);
      continue;
    }
    if (!s.ok()) {
      (*corrupt)[id] = s;
      continue;
    }
    (*tenants)[id] = std::move(body);
  }
  return Status::OK();
}

Status Catalog::SaveTenant(const catalogpb::TenantBody& body) {
  const std::string dir = TenantDir(body.tenant_id());
  Status s = MakeDir(dir);
  if (!s.ok()) return s;
  catalogpb::TenantRecord record;
  record.set_tenant_id(body.tenant_id());
  std::string plain = body.SerializeAsString();
  std::string sealed;
  s = AeadSeal(catalog_key_, plain, TenantAad(cluster_id(), body.tenant_id()),
               &sealed);
  Wipe(&plain);
  if (!s.ok()) return s;
  record.set_sealed_body(sealed);
  s = WriteRecordFile(dir + "/" + kTenantFile, record.SerializeAsString());
  if (!s.ok()) return s;
  return SyncDir(dir_ + "/" + kTenantsDir);
}

Status Catalog::WrapDataKey(const std::string& tenant, uint32_t version,
                            const std::string& master_key_id,
                            const SecretKey& key, std::string* wrapped,
                            const std::string& home_cluster) const {
  const std::string& home = home_cluster.empty() ? cluster_id() : home_cluster;
  return keys_->Wrap(master_key_id, key.view(),
                     "coffer data key|" + home + "|" + tenant + "|" +
                         std::to_string(version),
                     wrapped);
}

Status Catalog::UnwrapDataKey(const std::string& tenant, uint32_t version,
                              const std::string& master_key_id,
                              const std::string& wrapped, SecretKey* key,
                              const std::string& home_cluster) const {
  const std::string& home = home_cluster.empty() ? cluster_id() : home_cluster;
  std::string raw;
  Status s = keys_->Unwrap(master_key_id, wrapped,
                           "coffer data key|" + home + "|" + tenant +
                               "|" + std::to_string(version),
                           &raw);
  if (s.ok()) s = SecretKey::FromBytes(raw, key);
  Wipe(&raw);
  if (s.IsWrongKey()) {
    return Status::WrongKey(
        "data key version " + std::to_string(version) + " of tenant '" +
        tenant + "' does not unwrap with master key '" + master_key_id + "'");
  }
  return s;
}

}  // namespace coffer
