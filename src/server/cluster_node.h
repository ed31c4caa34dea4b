/*
 * Cluster mode's part of the server's wiring (docs/cluster.md): the etcd
 * backend built from the options, and health changes handed to the writer
 * as writes of their own, so that they reach etcd and every node.
 */
#ifndef DSI_CLUSTER_NODE_H
#define DSI_CLUSTER_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster/member.h"
#include "common/log.h"
#include "server/backend.h"
#include "server/options.h"
#include "server/registry.h"
#include "server/writer.h"

/*
 * The etcd TLS settings (--cluster-ca, --cluster-cert, --cluster-key)
 * together: only with an etcds:// --cluster, a certificate only with its
 * key, every file readable now (the key a secret: group and others must
 * not read it). 0, or DSC_EINVAL with why naming the setting. Loading the
 * configuration calls it, so a mistake stops start-up as a bad setting does.
 */
int dsi_cluster_tls_check(const dsi_server_options *o, char *why, size_t why_len);

/*
 * The backend for --cluster etcd://a:1,b:2 (etcds:// with the TLS settings): refuses a --data file
 * (the registry is in etcd), names the node (--node-name, else the host name). 0 and *out, or an
 * error with why.
 */
int dsi_cluster_backend_open(
    dsi_backend **out, const dsi_server_options *o, const dsi_log *log, char *why, size_t why_len);

/*
 * This node's membership (cluster/member.h) and what follows from it: which
 * instances this node checks (rendezvous among the live members), and the
 * fence its health writes carry.
 */
typedef struct dsi_cluster_node dsi_cluster_node;

/*
 * Joins the cluster as o's node; 0 and *out, or an error with why. A name
 * another key holds (a live node, or a crashed one whose lease has not
 * expired) is not an error: the node serves, checks nothing, and joins
 * once the name is free.
 */
int  dsi_cluster_node_open(dsi_cluster_node **out, const dsi_server_options *o, const dsi_log *log,
     char *why, size_t why_len);
void dsi_cluster_node_close(dsi_cluster_node *n); /* leaves the cluster; NULL is fine */

/* Whether this node is a member now and the owner of (service, endpoint). */
bool dsi_cluster_node_owns(dsi_cluster_node *n, const char *service, const char *endpoint);

/*
 * The membership now (arg: the node), for the backend's fenced health
 * writes (etcd_backend.h): 0, or DSC_ENOTFOUND before the node has joined.
 */
int dsi_cluster_node_view(void *arg, dsi_membership *out);

/*
 * Queues a change of one instance's health on wr; answered (and freed) by
 * the writer, logged when it cannot be stored. A no-op when the registry
 * already has that state by then.
 */
void dsi_cluster_submit_health(dsi_writer *wr, dsi_registry *r, dsi_cluster_node *n,
    const dsi_log *log, const char *service, const char *endpoint, dsc_health health,
    const char *reason);

#endif
