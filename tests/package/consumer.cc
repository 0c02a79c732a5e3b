// Copyright (c) Coffer authors.
//
// Consumer of the installed Coffer package (see tests/package_test.sh): uses
// only the public umbrella header and the Coffer::coffer target.
//
// Usage: consumer TEMP_DIR
// Creates TEMP_DIR/master.key and a cluster in TEMP_DIR/data, writes and reads
// back one value, and prints "consumer ok". Exits 1 on any failure.

#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "coffer/coffer.h"

namespace {

int Fail(std::string_view what, const coffer::Status& s) {
  std::cerr << "consumer: " << what << ": " << s.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer TEMP_DIR\n";
    return 1;
  }
  const std::string dir = argv[1];
  const std::string key_file = dir + "/master.key";

  coffer::Status s = coffer::GenerateKeyFile(key_file);
  if (!s.ok()) return Fail("GenerateKeyFile", s);

  std::shared_ptr<coffer::KeyProvider> keys;
  s = coffer::NewFileKeyProvider(key_file, &keys);
  if (!s.ok()) return Fail("NewFileKeyProvider", s);

  coffer::ClusterOptions options;
  options.cluster_id = "pkg";
  options.region = "r1";
  options.geography = "g1";
  std::unique_ptr<coffer::Cluster> cluster;
  s = coffer::Cluster::Create(dir + "/data", options, coffer::OpenOptions(),
                              keys, &cluster);
  if (!s.ok()) return Fail("Cluster::Create", s);

  s = cluster->CreateTenant("t1", coffer::TenantOptions());
  if (!s.ok()) return Fail("CreateTenant", s);

  std::unique_ptr<coffer::Tenant> tenant;
  s = cluster->GetTenant("t1", &tenant);
  if (!s.ok()) return Fail("GetTenant", s);

  s = tenant->Put(coffer::WriteOptions(), "greeting", "hello from consumer");
  if (!s.ok()) return Fail("Put", s);

  std::string value;
  s = tenant->Get(coffer::ReadOptions(), "greeting", &value);
  if (!s.ok()) return Fail("Get", s);
  if (value != "hello from consumer") {
    std::cerr << "consumer: Get returned \"" << value
              << "\", want \"hello from consumer\"\n";
    return 1;
  }

  tenant.reset();   // handles must be released before the cluster
  cluster.reset();
  std::cout << "consumer ok\n";
  return 0;
}
