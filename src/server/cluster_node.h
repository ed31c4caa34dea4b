/*
 * Cluster mode's part of the server's wiring (docs/cluster.md): the etcd
 * backend built from the options, and health changes handed to the writer
 * as writes of their own, so that they reach etcd and every node.
 */
#ifndef DSI_CLUSTER_NODE_H
#define DSI_CLUSTER_NODE_H

#include <stddef.h>

#include "common/log.h"
#include "server/backend.h"
#include "server/options.h"
#include "server/registry.h"
#include "server/writer.h"

/*
 * The backend for --cluster etcd://a:1,b:2: refuses a --data file (the
 * registry is in etcd), names the node (--node-name, else the host name).
 * 0 and *out, or an error with why.
 */
int dsi_cluster_backend_open(
    dsi_backend **out, const dsi_server_options *o, const dsi_log *log, char *why, size_t why_len);

/*
 * Queues a change of one instance's health on wr; answered (and freed) by
 * the writer, logged when it cannot be stored. A no-op when the registry
 * already has that state by then.
 */
void dsi_cluster_submit_health(dsi_writer *wr, dsi_registry *r, const dsi_log *log,
    const char *service, const char *endpoint, dsc_health health, const char *reason);

#endif
