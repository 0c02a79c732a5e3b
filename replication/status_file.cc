// Copyright (c) Coffer authors.

#include "replication/status_file.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "engine/record_file.h"
#include "engine/thread_name.h"
#include "replication/proto/replication.pb.h"

namespace coffer {

Status WriteReplicationStatusFile(const std::string& data_dir,
                                  const ReplicationStatus& status) {
  replpb::StatusRecord r;
  r.set_role(status.role);
  r.set_cluster_id(status.cluster_id);
  r.set_epoch(status.epoch);
  r.set_connection(status.connection);
  r.set_peer_cluster_id(status.peer_cluster_id);
  r.set_peer_address(status.peer_address);
  r.set_last_error(status.last_error);
  r.set_wal_retention_seconds(status.wal_retention_seconds);
  r.set_batches(status.batches);
  r.set_batches_from_log(status.batches_from_log);
  r.set_bytes(status.bytes);
  r.set_reseeds(status.reseeds);
  r.set_connects(status.connects);
  r.set_as_of_unix_micros(status.as_of_unix_micros);
  r.set_pid(static_cast<int32_t>(::getpid()));
  r.set_fenced_by(status.fenced_by);
  r.set_fenced_by_epoch(status.fenced_by_epoch);
  r.set_promoted_from(status.promoted_from);
  r.set_promoted_unix_micros(status.promoted_unix_micros);
  r.set_switchover_to(status.switchover_to);
  for (const TenantReplicationStatus& t : status.tenants) {
    replpb::TenantStatusRecord* o = r.add_tenants();
    o->set_tenant(t.tenant);
    o->set_primary_seq(t.primary_seq);
    o->set_applied_seq(t.applied_seq);
    o->set_lag_seconds(t.lag_seconds);
    o->set_primary_commit_unix_micros(t.primary_commit_unix_micros);
    o->set_applied_commit_unix_micros(t.applied_commit_unix_micros);
    o->set_retention_headroom_seconds(t.retention_headroom_seconds);
    o->set_state(t.state);
    o->set_reseeds(t.reseeds);
  }
  return WriteRecordFile(data_dir + "/" + kReplicationStatusFile,
                         r.SerializeAsString());
}

Status ReadReplicationStatusFile(const std::string& data_dir,
                                 ReplicationStatus* status) {
  const std::string path = data_dir + "/" + kReplicationStatusFile;
  std::string bytes;
  Status s = ReadRecordFile(path, &bytes);
  if (s.IsNotFound()) {
    return Status::NotFound("no replication status in " + data_dir +
                            " (replication never ran there)");
  }
  if (!s.ok()) return s;
  replpb::StatusRecord r;
  if (!r.ParseFromString(bytes)) {
    return Status::Corruption(path + " does not parse");
  }
  *status = ReplicationStatus();
  status->role = r.role();
  status->cluster_id = r.cluster_id();
  status->epoch = r.epoch();
  status->connection = r.connection();
  status->peer_cluster_id = r.peer_cluster_id();
  status->peer_address = r.peer_address();
  status->last_error = r.last_error();
  status->wal_retention_seconds = r.wal_retention_seconds();
  status->batches = r.batches();
  status->batches_from_log = r.batches_from_log();
  status->bytes = r.bytes();
  status->reseeds = r.reseeds();
  status->connects = r.connects();
  status->as_of_unix_micros = r.as_of_unix_micros();
  status->fenced_by = r.fenced_by();
  status->fenced_by_epoch = r.fenced_by_epoch();
  status->promoted_from = r.promoted_from();
  status->promoted_unix_micros = r.promoted_unix_micros();
  status->switchover_to = r.switchover_to();
  for (const replpb::TenantStatusRecord& o : r.tenants()) {
    TenantReplicationStatus t;
    t.tenant = o.tenant();
    t.primary_seq = o.primary_seq();
    t.applied_seq = o.applied_seq();
    t.lag_seqs =
        t.primary_seq > t.applied_seq ? t.primary_seq - t.applied_seq : 0;
    t.lag_seconds = o.lag_seconds();
    t.primary_commit_unix_micros = o.primary_commit_unix_micros();
    t.applied_commit_unix_micros = o.applied_commit_unix_micros();
    t.retention_headroom_seconds = o.retention_headroom_seconds();
    t.state = o.state();
    t.reseeds = o.reseeds();
    status->tenants.push_back(std::move(t));
  }
  // The writer is gone: what it wrote last is history, not a connection.
  if (r.pid() > 0 && r.pid() != ::getpid() && ::kill(r.pid(), 0) != 0 &&
      errno == ESRCH) {
    status->connection = "stopped";
  }
  return Status::OK();
}

StatusFileWriter::StatusFileWriter(std::string data_dir,
                                   std::function<void(ReplicationStatus*)> fill,
                                   int interval_ms)
    : dir_(std::move(data_dir)),
      fill_(std::move(fill)),
      interval_ms_(interval_ms) {
  thread_ = std::thread([this] { Run(); });
}

StatusFileWriter::~StatusFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StatusFileWriter::Run() {
  NameThisThread("coffer-status");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const bool last = stop_;
    lock.unlock();
    ReplicationStatus status;
    fill_(&status);
    if (last) status.connection = "stopped";
    // Best effort: a failure shows as a stale as_of time.
    WriteReplicationStatusFile(dir_, status).PermitUncheckedError();
    lock.lock();
    if (last) return;
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_),
                 [this] { return stop_; });
  }
}

}  // namespace coffer
