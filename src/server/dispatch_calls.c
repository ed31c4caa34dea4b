/* The kinds' handlers: each fills its part of c->out from the registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "server/dispatch_impl.h"
#include "server/statusinfo.h"

/* ---- handlers: run after validate_common, fill c->out ---- */

int
dsi_dispatch_check_registration(
    const dsi_dispatch *d, const dsi_registration *reg, char *msg, size_t len)
{
	return dsi_validate_registration(d->policy, d->schemes, reg, msg, len);
}

int
dsi_call_check_register(dsi_call *c)
{
	const Discovery__V1__RegisterRequest *rq = (const Discovery__V1__RegisterRequest *) c->req;
	int rv = dsi_validate_metadata_sent(c->d->limits, rq, c->message, sizeof(c->message));

	if (rv != 0) {
		return rv;
	}
	if (strlen(rq->health_path) > DSI_HEALTH_PATH_MAX) {
		snprintf(c->message, sizeof(c->message), "health_path is longer than %d bytes",
		    DSI_HEALTH_PATH_MAX);
		return DSC_EINVAL;
	}
	dsi_validate_health_path(rq->health_path, c->path, sizeof(c->path));
	if (rq->n_metadata > 0 && (c->kv = calloc(rq->n_metadata, sizeof(*c->kv))) == NULL) {
		return DSC_ENOMEM;
	}
	for (size_t i = 0; i < rq->n_metadata; i++) {
		c->kv[i].key   = rq->metadata[i]->key;
		c->kv[i].value = rq->metadata[i]->value;
	}
	c->reg = (dsi_registration) {
		.service     = c->service,
		.endpoint    = c->endpoint,
		.metadata    = c->kv,
		.n_metadata  = rq->n_metadata,
		.health_path = c->path,
		.ttl_ms      = rq->ttl_ms,
		.weight      = rq->weight,
		.origin      = c->d->origin,
	};
	return dsi_dispatch_check_registration(c->d, &c->reg, c->message, sizeof(c->message));
}

/* On the writer thread: the one decision, which the file and the registry both take. */
int
dsi_call_prepare_register(dsi_call *c, uint32_t pending_service, uint32_t pending_total)
{
	return dsi_registry_prepare_register(c->d->registry, &c->reg, pending_service,
	    pending_total, dsi_wall_ms(), true, &c->w.op, c->message, sizeof(c->message));
}

static void
fill_register(dsi_call *c)
{
	discovery__v1__register_response__init(&c->out.reg);
	c->out.reg.instance = c->one;
}

int
dsi_call_commit_register(dsi_call *c)
{
	c->created = dsi_registry_op_get(c->w.op)->creates;
	dsi_registry_commit(c->d->registry, c->w.op, &c->one, &c->revision);
	c->w.op = NULL;
	fill_register(c);
	return 0;
}

int
dsi_call_do_register(dsi_call *c)
{
	int rv = dsi_registry_register(c->d->registry, &c->reg, dsi_wall_ms(), &c->one, &c->created,
	    &c->revision, c->message, sizeof(c->message));
	if (rv == 0) {
		fill_register(c);
	}
	return rv;
}

int
dsi_call_do_resolve(dsi_call *c)
{
	const Discovery__V1__ResolveRequest *rq = (const Discovery__V1__ResolveRequest *) c->req;
	int                                  rv = dsi_registry_resolve(
	                                     c->d->registry, c->service, rq->healthy_only, &c->one, &c->revision);
	if (rv == 0) {
		discovery__v1__resolve_response__init(&c->out.resolve);
		c->out.resolve.instance = c->one;
	} else if (rv == DSC_EUNAVAILABLE) {
		snprintf(c->message, sizeof(c->message), "service %s has no healthy instance",
		    c->service);
	}
	return rv;
}

int
dsi_call_prepare_deregister(dsi_call *c, uint32_t pending_service, uint32_t pending_total)
{
	(void) pending_service;
	(void) pending_total;
	return dsi_registry_prepare_deregister(c->d->registry, c->service, c->endpoint, &c->w.op);
}

static void
fill_deregister(dsi_call *c)
{
	discovery__v1__deregister_response__init(&c->out.dereg);
	c->out.dereg.removed = c->removed;
}

int
dsi_call_commit_deregister(dsi_call *c)
{
	c->removed = dsi_registry_op_get(c->w.op)->removes;
	dsi_registry_commit(c->d->registry, c->w.op, NULL, &c->revision);
	c->w.op = NULL;
	fill_deregister(c);
	return 0;
}

int
dsi_call_do_deregister(dsi_call *c)
{
	int rv = dsi_registry_deregister(
	    c->d->registry, c->service, c->endpoint, &c->removed, &c->revision);
	if (rv == 0) {
		fill_deregister(c);
	}
	return rv;
}

int
dsi_call_do_is_healthy(dsi_call *c)
{
	bool       healthy;
	dsc_health state;
	int        rv = dsi_registry_is_healthy(
	           c->d->registry, c->service, c->endpoint, &healthy, &state, &c->revision);
	if (rv == 0) {
		discovery__v1__is_healthy_response__init(&c->out.is_healthy);
		c->out.is_healthy.healthy = healthy;
		c->out.is_healthy.state   = (Discovery__V1__HealthState) state;
	}
	return rv;
}

int
dsi_call_do_get_all(dsi_call *c)
{
	int rv = dsi_registry_get_all(c->d->registry, c->service_or_null, &c->many, &c->revision);
	if (rv == 0) {
		discovery__v1__get_all_response__init(&c->out.get_all);
		c->out.get_all.instances   = c->many.items;
		c->out.get_all.n_instances = c->many.count;
		c->out.get_all.revision    = c->revision;
	}
	return rv;
}

/* Cluster mode: the heartbeat renews the instance's alive key in etcd (any node). */
static int
heartbeat_cluster(dsi_call *c)
{
	dsi_instance *in = NULL;
	int           rv = dsi_registry_get_one(
	              c->d->registry, c->service, c->endpoint, &in, NULL, &c->revision);
	if (rv == 0 && in->ttl_ms == 0) {
		rv = DSC_ESTATE;
	} else if (rv == 0) {
		rv = c->d->heartbeat(c->d->heartbeat_arg, c->service, c->endpoint, in->ttl_ms,
		    c->message, sizeof(c->message));
	}
	if (rv == 0) {
		discovery__v1__heartbeat_response__init(&c->out.heartbeat);
		c->one                    = in;
		c->out.heartbeat.instance = c->one;
		return 0;
	}
	free(in);
	if (rv == DSC_ESTATE) {
		snprintf(c->message, sizeof(c->message),
		    "instance of %s was registered without ttl_ms: the server checks it itself",
		    c->service);
	}
	return rv;
}

/*
 * On the writer thread. In cluster mode the heartbeat is etcd's (a lease
 * renewed): done here, before the commit, so that no lock of the writer's
 * is held across the call; nothing is left for commit.
 */
int
dsi_call_prepare_heartbeat(dsi_call *c, uint32_t pending_service, uint32_t pending_total)
{
	(void) pending_service;
	(void) pending_total;
	/* A batch prepared again after a lost race: the lease is renewed already. */
	if (c->d->heartbeat == NULL || c->one != NULL) {
		return 0;
	}
	return heartbeat_cluster(c);
}

/* Under the writer's apply mutex: a single node's heartbeat, in memory. */
int
dsi_call_commit_heartbeat(dsi_call *c)
{
	return c->d->heartbeat != NULL ? 0 : dsi_call_do_heartbeat(c);
}

int
dsi_call_do_heartbeat(dsi_call *c)
{
	if (c->d->heartbeat != NULL) {
		return heartbeat_cluster(c);
	}
	int rv = dsi_registry_heartbeat(
	    c->d->registry, c->service, c->endpoint, dsi_wall_ms(), &c->one, &c->revision);
	if (rv == 0) {
		discovery__v1__heartbeat_response__init(&c->out.heartbeat);
		c->out.heartbeat.instance = c->one;
	} else if (rv == DSC_ESTATE) {
		snprintf(c->message, sizeof(c->message),
		    "instance of %s was registered without ttl_ms: the server checks it itself",
		    c->service);
	}
	return rv;
}

int
dsi_call_do_status(dsi_call *c)
{
	dsi_statusinfo bare = { .registry = c->d->registry };
	int rv = dsi_statusinfo_fill(c->d->status != NULL ? c->d->status : &bare, &c->out.status);
	if (rv == 0) {
		c->revision = c->out.status.revision;
	}
	return rv;
}
