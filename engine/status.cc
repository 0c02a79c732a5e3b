// Copyright (c) Coffer authors.

#include "coffer/status.h"

namespace coffer {

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kCorruption:
      return "Corruption";
    case Code::kIOError:
      return "IOError";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kQuotaExceeded:
      return "QuotaExceeded";
    case Code::kTenantLimit:
      return "TenantLimit";
    case Code::kBusy:
      return "Busy";
    case Code::kWrongKey:
      return "WrongKey";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kNotSupported:
      return "NotSupported";
    case Code::kKeyRevoked:
      return "KeyRevoked";
    case Code::kFenced:
      return "Fenced";
    case Code::kReadOnly:
      return "ReadOnly";
    case Code::kLagExceeded:
      return "LagExceeded";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = CodeName(code_);
  if (!msg_.empty()) {
    out += ": ";
    out += msg_;
  }
  return out;
}

}  // namespace coffer
