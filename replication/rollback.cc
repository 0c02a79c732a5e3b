// Copyright (c) Coffer authors.

#include "replication/rollback.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/aead.h"
#include "engine/clock.h"
#include "engine/record_file.h"

namespace coffer {

namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "CofferRB";  // 8 bytes
constexpr uint32_t kVersion = 1;
constexpr size_t kChunkBytes = size_t{1} << 20;
constexpr uint32_t kMaxSealedChunk = 64u << 20;
constexpr uint32_t kMaxHeader = 1u << 20;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(char((v >> (8 * i)) & 0xff));
}

bool GetU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 3; i >= 0; --i) *v = (*v << 8) | uint8_t((*in)[i]);
  in->remove_prefix(4);
  return true;
}

std::string KeyAad(const replpb::RollbackHeader& h) {
  return "coffer rollback key|" + h.cluster_id() + "|" + h.tenant() + "|" +
         h.file_id();
}

std::string ChunkAad(const std::string& file_id, uint64_t index, bool last) {
  return "coffer rollback|" + file_id + "|" + std::to_string(index) + "|" +
         (last ? "last" : "more");
}

std::string Hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// Reads the header of `bytes`; *rest: what follows it.
Status ParseHeader(const std::string& path, std::string_view bytes,
                   replpb::RollbackHeader* header, std::string_view* rest) {
  if (bytes.size() < 8 || bytes.substr(0, 8) != std::string_view(kMagic, 8)) {
    return Status::Corruption(path + " is not a Coffer rollback file");
  }
  bytes.remove_prefix(8);
  uint32_t version = 0, len = 0;
  if (!GetU32(&bytes, &version) || version != kVersion) {
    return Status::Corruption(path + ": unknown rollback file version");
  }
  if (!GetU32(&bytes, &len) || len > kMaxHeader || bytes.size() < len ||
      !header->ParseFromArray(bytes.data(), static_cast<int>(len))) {
    return Status::Corruption(path + ": damaged header");
  }
  bytes.remove_prefix(len);
  *rest = bytes;
  return Status::OK();
}

}  // namespace

Status RollbackWriter::Create(const std::string& data_dir,
                              replpb::RollbackHeader header, KeyProvider* keys,
                              const std::string& master_key_id,
                              std::unique_ptr<RollbackWriter>* result) {
  std::unique_ptr<RollbackWriter> w(new RollbackWriter());
  w->dir_ = data_dir + "/" + kRollbackDir;
  std::error_code ec;
  fs::create_directories(w->dir_, ec);
  if (ec) return Status::IOError("cannot create " + w->dir_);
  Status s = SecretKey::Random(&w->key_);
  SecretKey id;
  if (s.ok()) s = SecretKey::Random(&id);
  if (!s.ok()) return s;
  w->file_id_ = Hex(std::string(id.view().substr(0, 12)));
  header.set_file_id(w->file_id_);
  header.set_created_unix_micros(NowMicros());
  header.set_master_key_id(master_key_id);
  std::string wrapped;
  s = keys->Wrap(master_key_id, w->key_.view(), KeyAad(header), &wrapped);
  if (!s.ok()) return s;
  header.set_wrapped_file_key(wrapped);
  const std::string name = header.tenant() + "-" +
                           std::to_string(header.created_unix_micros()) +
                           ".rbk";
  w->path_ = w->dir_ + "/" + name;
  w->tmp_path_ = w->path_ + ".tmp";
  w->fd_ = ::open(w->tmp_path_.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (w->fd_ < 0) {
    return Status::IOError("cannot create " + w->tmp_path_ + ": " +
                           std::strerror(errno));
  }
  std::string head(kMagic, 8);
  PutU32(&head, kVersion);
  const std::string h = header.SerializeAsString();
  PutU32(&head, static_cast<uint32_t>(h.size()));
  head += h;
  s = WriteAll(w->fd_, w->tmp_path_, head);
  if (!s.ok()) return s;
  *result = std::move(w);
  return Status::OK();
}

RollbackWriter::~RollbackWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());  // never finished
  }
}

Status RollbackWriter::Add(replpb::RollbackEntry entry) {
  pending_bytes_ += entry.ByteSizeLong();
  *pending_.add_entries() = std::move(entry);
  entries_++;
  if (pending_bytes_ >= kChunkBytes) return Flush(/*last=*/false);
  return Status::OK();
}

Status RollbackWriter::Flush(bool last) {
  std::string plain = pending_.SerializeAsString();
  std::string sealed;
  Status s = AeadSeal(key_, plain, ChunkAad(file_id_, chunk_index_, last),
                      &sealed);
  Wipe(&plain);
  if (!s.ok()) return s;
  std::string out;
  PutU32(&out, static_cast<uint32_t>(sealed.size()));
  out += sealed;
  s = WriteAll(fd_, tmp_path_, out);
  if (!s.ok()) return s;
  pending_.Clear();
  pending_bytes_ = 0;
  chunk_index_++;
  return Status::OK();
}

Status RollbackWriter::Finish(std::string* path) {
  Status s = Flush(/*last=*/true);
  if (s.ok() && ::fsync(fd_) != 0) s = Status::IOError("fsync " + tmp_path_);
  if (!s.ok()) return s;
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Status::IOError("cannot rename " + tmp_path_);
  }
  s = SyncDir(dir_);
  if (s.ok()) *path = path_;
  return s;
}

Status ListRollbackFiles(const std::string& data_dir, const std::string& tenant,
                         std::vector<RollbackFileInfo>* files,
                         std::vector<Status>* unreadable) {
  files->clear();
  if (unreadable != nullptr) unreadable->clear();
  const fs::path dir = fs::path(data_dir) / kRollbackDir;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::OK();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".rbk") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string head(8 + 8 + kMaxHeader, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    RollbackFileInfo info;
    info.path = entry.path().string();
    std::string_view rest;
    Status s = ParseHeader(info.path, head, &info.header, &rest);
    if (!s.ok()) {
      if (unreadable == nullptr) return s;
      unreadable->push_back(s);
      continue;
    }
    if (!tenant.empty() && info.header.tenant() != tenant) continue;
    files->push_back(std::move(info));
  }
  if (ec) return Status::IOError("cannot list " + dir.string());
  std::sort(files->begin(), files->end(),
            [](const RollbackFileInfo& a, const RollbackFileInfo& b) {
              return a.header.created_unix_micros() <
                     b.header.created_unix_micros();
            });
  return Status::OK();
}

Status ReadRollbackFile(
    const std::string& path, KeyProvider* keys,
    const std::function<void(const replpb::RollbackEntry&)>& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  replpb::RollbackHeader header;
  std::string_view rest;
  Status s = ParseHeader(path, bytes, &header, &rest);
  if (!s.ok()) return s;
  std::string raw;
  s = keys->Unwrap(header.master_key_id(), header.wrapped_file_key(),
                   KeyAad(header), &raw);
  SecretKey key;
  if (s.ok()) s = SecretKey::FromBytes(raw, &key);
  Wipe(&raw);
  if (!s.ok()) return s;
  for (uint64_t index = 0;; ++index) {
    uint32_t len = 0;
    if (!GetU32(&rest, &len) || len > kMaxSealedChunk || rest.size() < len) {
      return Status::Corruption(path + ": truncated at chunk " +
                                std::to_string(index));
    }
    const std::string_view sealed = rest.substr(0, len);
    rest.remove_prefix(len);
    const bool last = rest.empty();
    std::string plain;
    s = AeadOpen(key, sealed, ChunkAad(header.file_id(), index, last), &plain);
    if (!s.ok()) {
      return Status::Corruption(path + ": chunk " + std::to_string(index) +
                                " fails authentication (damaged, reordered "
                                "or truncated)");
    }
    replpb::RollbackChunk chunk;
    const bool parsed = chunk.ParseFromString(plain);
    Wipe(&plain);
    if (!parsed) {
      return Status::Corruption(path + ": chunk " + std::to_string(index) +
                                " does not parse");
    }
    for (const replpb::RollbackEntry& e : chunk.entries()) visit(e);
    if (last) return Status::OK();
  }
}

}  // namespace coffer
