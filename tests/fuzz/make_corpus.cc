// Copyright (c) Coffer authors.
//
// Writes the seed corpora of the fuzz targets: real bytes written by the
// engine (a cluster's catalog and tenant record, an audit log, a rollback
// file, encrypted-file prefixes, replication frames and messages carrying
// real write batches) and a few near-valid variants of each. Keys are the
// fixed test keys of fuzz_common.h, so the targets open what is sealed.
//   fuzz_make_corpus OUT_DIR     (writes OUT_DIR/<target>/<seed>)
// The committed corpora in tests/fuzz/corpus/ were written by this program;
// nonces are random, so a new run writes different but equivalent seeds.

#include <cstdio>
#include <memory>
#include <string>

#include "coffer/coffer.h"
#include "engine/audit_log.h"
#include "engine/catalog.h"
#include "engine/commit_stamp.h"
#include "engine/encryption_provider.h"
#include "engine/record_file.h"
#include "engine/tenant_db.h"
#include "replication/batch_inspect.h"
#include "replication/frame.h"
#include "replication/proto/replication.pb.h"
#include "replication/rollback.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "tests/family_id.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/rollback_fuzz_util.h"

namespace coffer::fuzz {
namespace {

std::string out_dir;

void Seed(const std::string& target, const std::string& name,
          std::string_view bytes) {
  MakeDirOrDie(out_dir + "/" + target);
  WriteFileOrDie(out_dir + "/" + target + "/" + name, bytes);
}

std::string UserBatch(uint64_t seq) {
  rocksdb::WriteBatch b;
  (void)b.PutLogData(EncodeCommitStamp(1700000000000000 + seq));
  (void)b.Put("user-key-1", "value one");
  (void)b.Put("user-key-2", std::string(40, 'v'));
  (void)b.Delete("user-key-0");
  (void)b.DeleteRange("a", "b");
  (void)b.SingleDelete("user-key-3");
  std::string rep = b.Data();
  for (int i = 0; i < 8; ++i) rep[i] = char((seq >> (8 * i)) & 0xff);
  return rep;
}

std::string SystemBatch() {
  test::FamilyId system(1);
  rocksdb::WriteBatch b;
  (void)b.Put("k", "v");
  (void)b.Put(&system, kReplicaPositionKey, "position");
  (void)b.Put(&system, "other", "x");
  return b.Data();
}

std::string MergeBatch() {
  rocksdb::WriteBatch b;
  (void)b.Merge("k", "v");
  return b.Data();
}

std::string Frame(const replpb::Envelope& e) {
  std::string out;
  CheckOk(EncodeFrame(e.SerializeAsString(), &out), "frame");
  return out;
}

void Batches() {
  Seed("batch", "user_batch", UserBatch(5));
  Seed("batch", "system_family", SystemBatch());
  Seed("batch", "merge_refused", MergeBatch());
  Seed("batch", "empty", rocksdb::WriteBatch().Data());
  std::string wrong = UserBatch(9);
  wrong[8] = 7;  // header count disagrees
  Seed("batch", "count_mismatch", wrong);
}

// The cluster directory of a real cluster with one tenant holding data.
std::string RealCluster() {
  const std::string dir = ScratchDir() + "/cluster";
  ClusterOptions options;
  options.cluster_id = "fuzz-c1";
  options.region = "r1";
  options.geography = "eu";
  std::unique_ptr<Cluster> cluster;
  CheckOk(Cluster::Create(dir, options, OpenOptions(), FixedKeyProvider(),
                          &cluster),
          "cluster");
  CheckOk(cluster->CreateTenant("t1", TenantOptions()), "tenant");
  std::unique_ptr<Tenant> tenant;
  CheckOk(cluster->GetTenant("t1", &tenant), "get tenant");
  CheckOk(tenant->Put(WriteOptions(), "k1", "v1"), "put");
  tenant.reset();
  cluster.reset();
  return dir;
}

void Catalogs(const std::string& dir, catalogpb::TenantBody* body) {
  const std::string cluster_file = ReadFileOrDie(dir + "/" + kClusterFile);
  const std::string tenant_file =
      ReadFileOrDie(dir + "/tenants/t1/" + kTenantFile);
  Seed("record_file", "cluster", cluster_file);
  Seed("record_file", "tenant", tenant_file);
  Seed("record_file", "truncated", cluster_file.substr(0, 40));
  std::string flipped = tenant_file;
  flipped[20] ^= 1;
  Seed("record_file", "bad_checksum", flipped);

  std::string payload;
  CheckOk(ParseRecordFile("CLUSTER", cluster_file, &payload), "cluster");
  Seed("catalog", "cluster_payload", payload);
  catalogpb::ClusterRecord record;
  FUZZ_CHECK(record.ParseFromString(payload));
  record.mutable_header()->set_format_version(2);
  Seed("catalog", "format_2", record.SerializeAsString());
  record.mutable_header()->set_format_version(1);
  std::string* sealed = record.mutable_sealed_body();
  (*sealed)[sealed->size() - 1] ^= 1;
  Seed("catalog", "body_tampered", record.SerializeAsString());

  std::unique_ptr<Catalog> catalog;
  CheckOk(Catalog::Load(dir, FixedKeyProvider(), &catalog), "load");
  CheckOk(catalog->LoadTenant("t1", body), "load tenant");
  CheckOk(ParseRecordFile("TENANT", tenant_file, &payload), "tenant");
  Seed("tenant_record", "record_payload", std::string(1, '\0') + payload);
  Seed("tenant_record", "body", "\x01" + body->SerializeAsString());
  catalogpb::TenantBody other = *body;
  other.set_tenant_id("t2");
  Seed("tenant_record", "body_other_tenant",
       "\x01" + other.SerializeAsString());

  const std::string audit = ReadFileOrDie(dir + "/" + kAuditFile);
  Seed("audit_log", "cluster_audit_other_key", audit.substr(0, 4096));
}

void Prefixes(const std::string& cluster_dir) {
  for (uint32_t version : {1u, 2u}) {
    auto keyring = std::make_shared<Keyring>();
    keyring->Add(1, MakeKey(kFixedKeyBytes), version == 1);
    keyring->Add(2, MakeKey(kSecondKeyBytes), version == 2);
    TenantEncryptionProvider provider(keyring, "'fuzz'");
    std::string file(kFilePrefixBytes, '\0');
    CheckOk(FromRocks(provider.CreateNewPrefix("f", file.data(), file.size()),
                      "prefix"),
            "prefix");
    rocksdb::Slice prefix(file);
    std::unique_ptr<rocksdb::BlockAccessCipherStream> stream;
    CheckOk(FromRocks(provider.CreateCipherStream("f", rocksdb::EnvOptions(),
                                                  prefix, &stream),
                      "stream"),
            "stream");
    std::string data = "some file data, not block aligned: 0123456789";
    CheckOk(FromRocks(stream->Encrypt(0, data.data(), data.size()), "enc"),
            "encrypt");
    Seed("file_prefix", "key_v" + std::to_string(version), file + data);
    if (version == 2) {
      std::string tampered = file;
      tampered[12] = 1;  // key version 1 no longer matches the check
      Seed("file_prefix", "tampered_version", tampered);
    }
  }
  // A real tenant file (its data key is another: the key check fails).
  for (const auto& e :
       std::filesystem::directory_iterator(cluster_dir + "/tenants/t1/db")) {
    if (e.path().filename() == "CURRENT") {
      Seed("file_prefix", "tenant_current_file", ReadFileOrDie(e.path()));
    }
  }
}

void Audit() {
  const std::string dir = ScratchDir() + "/audit";
  MakeDirOrDie(dir);
  AuditLog::RecordUnauthenticated(dir, "operator", "cluster.open", "cluster",
                                  "WrongKey", "failed open");
  const std::string pending = ReadFileOrDie(dir + "/" + kAuditPendingFile);
  std::unique_ptr<AuditLog> log;
  CheckOk(AuditLog::Open(dir, MakeKey(kFixedKeyBytes), &log), "audit open");
  CheckOk(log->Append("alice", "tenant.create", "tenant:t1", "ok",
                      "quota \"64MiB\"\tescaped \\ and \x01 and \xc3\xa9"),
          "append");
  CheckOk(log->Append("bob", "key.rotate", "tenant:t1", "ok", "version 2"),
          "append");
  log.reset();
  const std::string audit = ReadFileOrDie(dir + "/" + kAuditFile);
  Seed("audit_log", "chain", audit);
  Seed("audit_log", "chain_torn_tail", audit + "{\"seq\":4,\"ti");
  Seed("audit_log", "with_pending", audit + "--pending--\n" + pending);
  std::string edited = audit;
  edited[edited.find("alice")] = 'A';
  Seed("audit_log", "edited_entry", edited);
}

void Rollback() {
  const std::string dir = ScratchDir() + "/rollback";
  std::shared_ptr<KeyProvider> keys = FixedKeyProvider();
  replpb::RollbackHeader header;
  header.set_tenant("t1");
  header.set_cluster_id("fuzz-c1");
  header.set_new_primary("fuzz-c2");
  header.set_epoch(2);
  header.set_fork_seq(4);
  header.set_local_latest_seq(12);
  header.set_kind("batches");
  std::unique_ptr<RollbackWriter> writer;
  CheckOk(RollbackWriter::Create(dir, header, keys.get(), keys->DefaultKeyId(),
                                 &writer),
          "rollback");
  replpb::RollbackChunk chunk;
  for (uint64_t seq : {5u, 11u}) {
    replpb::RollbackEntry e;
    e.set_seq(seq);
    e.set_commit_unix_micros(1700000000000000 + seq);
    e.set_batch(UserBatch(seq));
    *chunk.add_entries() = e;
    CheckOk(writer->Add(e), "rollback add");
  }
  replpb::RollbackEntry record;
  record.set_key("snapshot-key");
  record.set_value("snapshot-value");
  *chunk.add_entries() = record;
  CheckOk(writer->Add(record), "rollback add");
  std::string path;
  CheckOk(writer->Finish(&path), "rollback finish");
  const std::string file = ReadFileOrDie(path);
  Seed("rollback_file", "batches", file);
  Seed("rollback_file", "truncated", file.substr(0, file.size() - 10));
  Seed("rollback_file", "header_only", file.substr(0, file.size() / 2));
  Seed("rollback_chunk", "one_chunk", std::string(1, '\0') +
                                          chunk.SerializeAsString());
  Seed("rollback_chunk", "two_chunks", "\x01" + chunk.SerializeAsString());
}

void Replication(const catalogpb::TenantBody& body) {
  replpb::Envelope hello;
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_cluster_id("fuzz-c1");
  hello.mutable_hello()->set_region("r1");
  hello.mutable_hello()->set_geography("eu");
  hello.mutable_hello()->set_epoch(1);
  hello.mutable_hello()->set_role("primary");

  replpb::Envelope batch;
  replpb::Batch* b = batch.mutable_batch();
  b->set_tenant("t1");
  b->set_epoch(1);
  b->set_first_seq(5);
  b->set_count(5);
  b->set_data(UserBatch(5));
  b->set_commit_unix_micros(1700000000000005);
  b->set_prev_chain_hash(std::string(8, '\x11'));
  b->set_primary_latest_seq(9);

  replpb::Envelope event;
  event.mutable_tenant_event()->set_kind(replpb::TenantEvent::CREATE);
  event.mutable_tenant_event()->set_tenant("t1");
  event.mutable_tenant_event()->set_tenant_body(body.SerializeAsString());

  replpb::Envelope ack;
  replpb::TenantPosition* p = ack.mutable_ack()->mutable_position();
  p->set_tenant("t1");
  p->set_applied_seq(9);
  p->set_chain_hash(std::string(8, '\x22'));
  p->set_epoch(1);

  replpb::Envelope reply;
  reply.mutable_hello_reply()->set_accepted(true);
  *reply.mutable_hello_reply()->add_positions() = *p;

  replpb::Envelope chunk;
  chunk.mutable_seed_chunk()->set_tenant("t1");
  chunk.mutable_seed_chunk()->set_file("000007.sst");
  chunk.mutable_seed_chunk()->set_data("CofferF\x01 ciphertext");

  replpb::Envelope heartbeat;
  heartbeat.mutable_heartbeat()->set_unix_micros(1700000000000000);

  Seed("replication_message", "hello", hello.SerializeAsString());
  Seed("replication_message", "batch", batch.SerializeAsString());
  Seed("replication_message", "tenant_event", event.SerializeAsString());
  Seed("replication_message", "ack", ack.SerializeAsString());
  Seed("replication_message", "hello_reply", reply.SerializeAsString());
  Seed("replication_message", "seed_chunk", chunk.SerializeAsString());
  b->set_data(SystemBatch());
  Seed("replication_message", "batch_system", batch.SerializeAsString());

  b->set_data(UserBatch(5));
  Seed("frame", "hello_whole", "\xff" + Frame(hello));
  Seed("frame", "batch_heartbeat_7byte_reads",
       "\x06" + Frame(batch) + Frame(heartbeat));
  Seed("frame", "event_1byte_reads", std::string(1, '\0') + Frame(event));
  std::string bad = Frame(ack);
  bad[bad.size() - 1] ^= 1;
  Seed("frame", "bad_checksum", "\x20" + bad);
  Seed("frame", "partial", "\x10" + Frame(reply).substr(0, 20));
}

void CliArgs() {
  const char* lines[] = {
      "init\n--data\n/x\n--key-file\n/dev/null\n--cluster-id\nc1\n--region\n"
      "r1\n--geography\neu\n--tenant-quota\n64MiB\n--cluster-quota\n1TiB\n"
      "--max-tenants\n100",
      "tenant\ncreate\nt1\n--data\n/x\n--key-file\n/dev/null\n--quota\n512KiB",
      "tenant\nquota\nt1\n--quota\n18446744073709551615\n--data\n/x\n"
      "--key-file\n/dev/null",
      "audit\nshow\n--data\n/x\n--key-file\n/dev/null\n--since\n"
      "2026-11-29T10:00:00.123Z",
      "audit\nshow\n--data\n/x\n--key-file\n/dev/null\n--since\n3d",
      "workload\n--data\n/x\n--key-file\n/dev/null\n--tenants\n4\n--rate\n"
      "100\n--duration\n10\n--value-size\n4KiB\n--tenant-prefix\nw\n"
      "--ack-log\n/x/acks",
      "scan\n--tenant\nt1\n--data\n/x\n--key-file\n/dev/null\n--limit\n010",
      "64MiB",
      "17179869184TiB",
  };
  int i = 0;
  for (const char* l : lines) Seed("cli_args", "args" + std::to_string(i++), l);
}

}  // namespace
}  // namespace coffer::fuzz

int main(int argc, char** argv) {
  using namespace coffer::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  coffer::catalogpb::TenantBody body;
  const std::string cluster = RealCluster();
  Catalogs(cluster, &body);
  Prefixes(cluster);
  Audit();
  Rollback();
  Replication(body);
  Batches();
  CliArgs();
  std::printf("seed corpora written to %s\n", out_dir.c_str());
  return 0;
}
