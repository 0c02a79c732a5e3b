// Copyright (c) Coffer authors.
//
// Umbrella header: everything an embedding application needs.

#ifndef COFFER_INCLUDE_COFFER_COFFER_H_
#define COFFER_INCLUDE_COFFER_COFFER_H_

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "coffer/options.h"
#include "coffer/replication.h"
#include "coffer/status.h"
#include "coffer/tenant.h"

#endif  // COFFER_INCLUDE_COFFER_COFFER_H_
