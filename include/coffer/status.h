// Copyright (c) Coffer authors.
//
// Status: the outcome of every Coffer operation. No exception ever crosses the
// public API; callers inspect a Status instead.
//
// Example:
//   coffer::Status s = tenant->Get(coffer::ReadOptions(), "k", &value);
//   if (s.IsNotFound()) { ... } else if (!s.ok()) { log(s.ToString()); }
//
// Messages name the tenant, file or setting involved and say what to do. They
// never contain key material or user values.
//
// Thread-safety: a Status is a value; distinct objects may be used from
// distinct threads without synchronization.

#ifndef COFFER_INCLUDE_COFFER_STATUS_H_
#define COFFER_INCLUDE_COFFER_STATUS_H_

#include <string>
#include <string_view>

namespace coffer {

class [[nodiscard]] Status {
 public:
  // Distinct outcome codes. The numeric values appear in JSON output of the
  // command-line tool: never renumber, only append.
  enum class Code : int {
    kOk = 0,
    kNotFound = 1,
    kInvalidArgument = 2,    // bad tenant id, bad option, malformed input
    kCorruption = 3,         // checksum/authentication failure on stored bytes
    kIOError = 4,            // the operating system refused an operation
    kAlreadyExists = 5,      // tenant, cluster or file already exists
    kQuotaExceeded = 6,      // a write would exceed a tenant or cluster quota
    kTenantLimit = 7,        // the cluster already holds max_tenants tenants
    kBusy = 8,               // data directory in use by another process
    kWrongKey = 9,           // master key does not match the cluster or tenant
    kPermissionDenied = 10,  // unsafe key file, or operation not allowed
    kNotSupported = 11,
    kKeyRevoked = 12,  // the tenant's key was revoked; tenant offline
    kFenced = 13,      // a higher epoch exists; this cluster takes no writes
    kReadOnly = 14,    // a passive replica: writes go to its primary
    kLagExceeded = 15,  // the replica lags past the tenant's RPO bound
  };

  Status() noexcept = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) {
    return {Code::kNotFound, msg};
  }
  static Status InvalidArgument(std::string_view msg) {
    return {Code::kInvalidArgument, msg};
  }
  static Status Corruption(std::string_view msg) {
    return {Code::kCorruption, msg};
  }
  static Status IOError(std::string_view msg) { return {Code::kIOError, msg}; }
  static Status AlreadyExists(std::string_view msg) {
    return {Code::kAlreadyExists, msg};
  }
  static Status QuotaExceeded(std::string_view msg) {
    return {Code::kQuotaExceeded, msg};
  }
  static Status TenantLimit(std::string_view msg) {
    return {Code::kTenantLimit, msg};
  }
  static Status Busy(std::string_view msg) { return {Code::kBusy, msg}; }
  static Status WrongKey(std::string_view msg) {
    return {Code::kWrongKey, msg};
  }
  static Status PermissionDenied(std::string_view msg) {
    return {Code::kPermissionDenied, msg};
  }
  static Status NotSupported(std::string_view msg) {
    return {Code::kNotSupported, msg};
  }
  static Status KeyRevoked(std::string_view msg) {
    return {Code::kKeyRevoked, msg};
  }
  static Status Fenced(std::string_view msg) { return {Code::kFenced, msg}; }
  static Status ReadOnly(std::string_view msg) {
    return {Code::kReadOnly, msg};
  }
  static Status LagExceeded(std::string_view msg) {
    return {Code::kLagExceeded, msg};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // The message without the code name; empty for OK.
  const std::string& message() const { return msg_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  bool IsQuotaExceeded() const { return code_ == Code::kQuotaExceeded; }
  bool IsTenantLimit() const { return code_ == Code::kTenantLimit; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsWrongKey() const { return code_ == Code::kWrongKey; }
  bool IsPermissionDenied() const { return code_ == Code::kPermissionDenied; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsKeyRevoked() const { return code_ == Code::kKeyRevoked; }
  bool IsFenced() const { return code_ == Code::kFenced; }
  bool IsReadOnly() const { return code_ == Code::kReadOnly; }
  bool IsLagExceeded() const { return code_ == Code::kLagExceeded; }

  // Short stable name of the code, e.g. "QuotaExceeded".
  static const char* CodeName(Code code);
  // "OK", or "<CodeName>: <message>".
  std::string ToString() const;

  // Marks an error as deliberately ignored; makes the intent searchable.
  void PermitUncheckedError() const {}

 private:
  Status(Code code, std::string_view msg) : code_(code), msg_(msg) {}

  Code code_ = Code::kOk;
  std::string msg_;
};

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_STATUS_H_
