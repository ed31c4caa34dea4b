/* Cluster mode's wiring in the server (cluster_node.h). */
#include "server/cluster_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/etcd_backend.h"

/* The etcd client's timeout for each call: a txn that takes longer is "unknown". */
#define ETCD_CALL_MS 5000

int
dsi_cluster_backend_open(
    dsi_backend **out, const dsi_server_options *o, const dsi_log *log, char *why, size_t why_len)
{
	char        host[256] = "";
	const char *members   = o->cluster + strlen("etcd://");
	size_t      n         = 1 + strlen(members) * 2 + 64;
	size_t      len       = 0;

	if (o->source[DSI_SET_DATA] != DSI_SRC_DEFAULT && strcmp(o->data, ":memory:") != 0) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "--data (from %s) does not apply with --cluster: the cluster's registry is in "
		    "etcd",
		    o->origin[DSI_SET_DATA]);
	}
	char *urls = malloc(n);
	if (urls == NULL) {
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	/* etcd://a:1,b:2 is the etcd client's "http://a:1,http://b:2". */
	for (const char *p = members; *p != 0;) {
		size_t m = strcspn(p, ",");
		len += (size_t) snprintf(
		    urls + len, n - len, "%shttp://%.*s", len > 0 ? "," : "", (int) m, p);
		p += m + (p[m] == ',');
	}
	if (o->node_name == NULL && gethostname(host, sizeof(host) - 1) != 0) {
		snprintf(host, sizeof(host), "discoveryd");
	}
	dsi_etcd_backend_options eo = {
		.endpoints  = urls,
		.prefix     = o->cluster_prefix,
		.node       = o->node_name != NULL ? o->node_name : host,
		.timeout_ms = ETCD_CALL_MS,
		.log        = log,
	};
	int rv = dsi_etcd_backend_open(out, &eo, why, why_len);
	free(urls);
	if (rv == 0) {
		dsi_info(log, "cluster mode: node %s, %s", eo.node, dsi_backend_describe(*out));
	}
	return rv;
}

/* One health change on its way through the writer. */
typedef struct health_write {
	dsi_write      w; /* first */
	dsi_registry  *registry;
	const dsi_log *log;
	dsc_health     health;
	int            result;
	char           reason[96];
	char           why[400];
	char          *service;
	char          *endpoint;
} health_write;

static int
health_prepare(dsi_write *w, uint32_t pending_service, uint32_t pending_total)
{
	health_write *hw = (health_write *) w;
	(void) pending_service;
	(void) pending_total;
	return dsi_registry_prepare_health(
	    hw->registry, hw->service, hw->endpoint, hw->health, hw->reason, dsi_wall_ms(), &w->op);
}

static void
health_apply(dsi_write *w, int rv, const char *why)
{
	health_write *hw = (health_write *) w;
	if (rv == 0) {
		dsi_registry_commit(hw->registry, w->op, NULL, NULL);
	} else {
		dsi_registry_op_free(w->op);
		snprintf(hw->why, sizeof(hw->why), "%s", why != NULL ? why : dsi_strerror(rv));
	}
	w->op      = NULL;
	hw->result = rv;
}

static void
health_reply(dsi_write *w)
{
	health_write *hw = (health_write *) w;
	if (hw->result != 0 && hw->result != DSC_ENOTFOUND) {
		/* The checker hands it again after its next check. */
		dsi_warn(hw->log, "health of %s not stored: %s", hw->service, hw->why);
	}
	free(hw->service);
	free(hw->endpoint);
	free(hw);
}

void
dsi_cluster_submit_health(dsi_writer *wr, dsi_registry *r, const dsi_log *log, const char *service,
    const char *endpoint, dsc_health health, const char *reason)
{
	health_write *hw = calloc(1, sizeof(*hw));
	if (hw == NULL || (hw->service = strdup(service)) == NULL
	    || (hw->endpoint = strdup(endpoint)) == NULL) {
		if (hw != NULL) {
			free(hw->service);
			free(hw);
		}
		dsi_warn(log, "health of %s not stored: out of memory", service);
		return;
	}
	hw->registry   = r;
	hw->log        = log;
	hw->health     = health;
	hw->w.service  = hw->service;
	hw->w.endpoint = hw->endpoint;
	hw->w.prepare  = health_prepare;
	hw->w.apply    = health_apply;
	hw->w.reply    = health_reply;
	dsi_strlcpy(hw->reason, reason != NULL ? reason : "", sizeof(hw->reason));
	dsi_writer_submit(wr, &hw->w);
}
