/* Wires registry, dispatch and transport together for one discoveryd. */
#include "server/server.h"

#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/admin.h"
#include "server/checker.h"
#include "server/cluster_node.h"
#include "server/dispatch.h"
#include "server/etcd_backend.h"
#include "server/events.h"
#include "server/registry.h"
#include "server/store_backend.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/transport.h"
#include "server/writer.h"

struct dsi_server {
	dsi_server_options opts;
	dsi_log            log;
	dsi_registry      *registry;
	dsi_dispatch       dispatch;
	dsi_rep_server    *rep;
	dsi_revwait       *revwait; /* requests waiting for their min_revision */
	dsi_events        *events;
	dsi_checker       *checker;
	dsi_backend       *store;  /* NULL with --data :memory:; etcd's with --cluster */
	dsi_cluster_node  *node;   /* --cluster: this node's membership */
	dsi_writer        *writer; /* the store's writer thread; NULL with :memory: */
	dsi_netpolicy      policy;
	dsi_metrics       *metrics;
	/* NULL with --admin off; atomic: the writer's thread flushes before it is set. */
	_Atomic(dsi_admin *) admin;
	dsi_statusinfo status; /* for the Status call and GET /v1/status; set before serving */
};

/* A --deregister-after removal on its way through the writer. */
typedef struct reap_write {
	dsi_write   w; /* first */
	dsi_server *srv;
	int         after_ms;
	int         result; /* from apply to reply */
	char       *service;
	char       *endpoint;
	char        why[400];
} reap_write;

/* After a change, outside the registry lock: publish it at once. */
static void
flush_events(void *arg)
{
	dsi_events_flush(((dsi_server *) arg)->events);
	dsi_admin_notify(atomic_load(&((dsi_server *) arg)->admin));
}

static void
reap_free(reap_write *rw)
{
	free(rw->service);
	free(rw->endpoint);
	free(rw);
}

/* Still due now that it is the writer's turn? Then the removal is stored first. */
static int
reap_prepare(dsi_write *w, uint32_t pending_service, uint32_t pending_total)
{
	reap_write *rw = (reap_write *) w;
	(void) pending_service;
	(void) pending_total;
	int rv = dsi_registry_prepare_reap(
	    rw->srv->registry, rw->service, rw->endpoint, rw->after_ms, dsi_wall_ms(), &w->op);
	if (rv == 0 && dsi_registry_op_get(w->op)->removes == 0) {
		dsi_registry_op_free(w->op); /* healthy again: nothing to do */
		w->op = NULL;
		rv    = DSC_ENOTFOUND;
	}
	return rv;
}

/* Under the writer's apply mutex: the file no longer has it, so neither may the registry. */
static void
reap_apply(dsi_write *w, int rv, const char *why)
{
	reap_write *rw = (reap_write *) w;
	if (rv == 0) {
		dsi_registry_commit(rw->srv->registry, w->op, NULL, NULL);
	} else {
		dsi_registry_op_free(w->op);
		snprintf(rw->why, sizeof(rw->why), "%s", why != NULL ? why : "");
	}
	w->op      = NULL;
	rw->result = rv;
}

static void
reap_reply(dsi_write *w)
{
	reap_write *rw = (reap_write *) w;
	char        esc[96];
	if (rw->result == 0) {
		dsi_info(&rw->srv->log, "removed %s %s after %d ms unhealthy", rw->service,
		    dsi_text_escape(rw->endpoint, esc, sizeof(esc)), rw->after_ms);
	} else if (rw->why[0] != 0) {
		dsi_warn(&rw->srv->log, "%s not removed: %s", rw->service, rw->why);
	}
	reap_free(rw);
}

static void
reap_submit(void *arg, const char *service, const char *endpoint, int after_ms)
{
	dsi_server *s  = arg;
	reap_write *rw = calloc(1, sizeof(*rw));
	if (rw == NULL || (rw->service = strdup(service)) == NULL
	    || (rw->endpoint = strdup(endpoint)) == NULL) {
		if (rw != NULL) {
			reap_free(rw);
		}
		return; /* the next check tries again */
	}
	rw->srv        = s;
	rw->after_ms   = after_ms;
	rw->w.service  = rw->service;
	rw->w.endpoint = rw->endpoint;
	rw->w.prepare  = reap_prepare;
	rw->w.apply    = reap_apply;
	rw->w.reply    = reap_reply;
	dsi_writer_submit(s->writer, &rw->w);
}

static int
reserve_revision(void *arg)
{
	return dsi_writer_try_reserve(((dsi_server *) arg)->writer);
}

static void
release_revision(void *arg)
{
	dsi_writer_release(((dsi_server *) arg)->writer);
}

/* The follower's changes: under the writer's apply mutex, as a batch's. */
static void
apply_lock(void *arg)
{
	while (dsi_writer_try_reserve(((dsi_server *) arg)->writer) != 0) {
		/* never with a counting backend: its writer has no ceiling */
	}
}

static void
apply_unlock(void *arg)
{
	dsi_writer_release(((dsi_server *) arg)->writer);
}

/* Cluster mode: a change of health goes through the writer, as every change does. */
static void
health_submit(
    void *arg, const char *service, const char *endpoint, dsc_health health, const char *reason)
{
	dsi_server *s = arg;
	dsi_cluster_submit_health(
	    s->writer, s->registry, s->node, &s->log, service, endpoint, health, reason);
}

static int
heartbeat_cluster(
    void *arg, const char *service, const char *endpoint, uint32_t ttl_ms, char *msg, size_t len)
{
	return dsi_etcd_backend_heartbeat(
	    ((dsi_server *) arg)->store, service, endpoint, ttl_ms, msg, len);
}

static bool
ttl_alive(void *arg, const char *service, const char *endpoint)
{
	return dsi_etcd_backend_alive(((dsi_server *) arg)->store, service, endpoint);
}

static bool
health_owned(void *arg, const char *service, const char *endpoint)
{
	return dsi_cluster_node_owns(((dsi_server *) arg)->node, service, endpoint);
}

static int
check_stored(void *arg, const dsi_registration *reg, char *msg, size_t len)
{
	return dsi_dispatch_check_registration(&((dsi_server *) arg)->dispatch, reg, msg, len);
}

/* Restored instances are checked at once, as new registrations are. */
static void
check_restored(dsi_server *s)
{
	dsi_instances all = { NULL, 0 };
	if (s->checker == NULL || dsi_registry_get_all(s->registry, NULL, &all, NULL) != 0) {
		return;
	}
	for (size_t i = 0; i < all.count; i++) {
		dsi_change ch = {
			.type     = DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED,
			.service  = all.items[i]->service,
			.instance = all.items[i],
			.previous = DSC_HEALTH_UNKNOWN,
			.reason   = "",
		};
		dsi_checker_notify(s->checker, &ch);
	}
	dsi_instances_free(&all);
}

/* The registry's observer: fan each change out to the checker and the publisher. */
static void
on_change(void *arg, dsi_change *ch)
{
	dsi_server *s = arg;
	if (s->checker != NULL) {
		dsi_checker_notify(s->checker, ch);
	}
	dsi_revwait_notify(s->revwait, ch->revision);
	dsi_events_enqueue(s->events, ch); /* takes the instance */
}

int
dsi_server_create(
    dsi_server **out, const dsi_server_options *o, const dsi_log *log, char *why, size_t why_len)
{
	dsi_server     *s   = calloc(1, sizeof(*s));
	nng_tls_config *tls = NULL; /* ours until create returns; the listeners hold their own */
	int             rv;

	if (s == NULL) {
		return DSC_ENOMEM;
	}
	s->opts      = *o;
	s->log.level = o->log_level;
	if (log != NULL) { /* its queue, if any, outlives the server */
		s->log.out    = log->out;
		s->log.queue  = log->queue;
		s->log.format = log->format;
	}
	if ((rv = dsi_metrics_create(&s->metrics)) != 0
	    || (rv = dsi_registry_create(&s->registry, &o->limits)) != 0) {
		goto fail;
	}
	dsi_registry_set_protection(s->registry, o->protection_threshold);
	dsi_netpolicy_init(&s->policy);
	for (size_t i = 0; i < o->n_allow_endpoint; i++) {
		dsi_netpolicy_add(&s->policy, true, o->allow_endpoint[i], why, why_len);
	}
	for (size_t i = 0; i < o->n_deny_endpoint; i++) {
		dsi_netpolicy_add(&s->policy, false, o->deny_endpoint[i], why, why_len);
	}
	s->dispatch.registry        = s->registry;
	s->dispatch.log             = &s->log;
	s->dispatch.schemes         = o->endpoint_schemes;
	s->dispatch.token           = o->token;
	s->dispatch.auth_reads      = o->auth_reads;
	s->dispatch.policy          = &s->policy;
	s->dispatch.limits          = &s->opts.limits;
	s->dispatch.after_write     = flush_events;
	s->dispatch.after_write_arg = s;
	s->dispatch.metrics         = s->metrics;
	s->dispatch.status          = &s->status;
	s->status.started_wall_ms   = dsi_wall_ms();
	s->status.started_mono_ms   = dsi_monotonic_ms();
	s->status.registry          = s->registry;
	s->status.data              = s->opts.data;
	if (o->cluster != NULL) {
		if ((rv = dsi_cluster_backend_open(&s->store, o, &s->log, why, why_len)) != 0
		    || (rv = dsi_backend_load(s->store, s->registry, check_stored, s, why, why_len))
		        != 0
		    || (rv = dsi_cluster_node_open(&s->node, o, &s->log, why, why_len)) != 0) {
			rv = rv == DSC_EINVAL ? rv : DSC_ESTATE;
			goto fail;
		}
	} else if (strcmp(o->data, ":memory:") != 0) {
		/* What was stored under another configuration must meet this one's rules. */
		if ((rv = dsi_store_backend_open(&s->store, o->data, &s->log, why, why_len)) != 0
		    || (rv = dsi_backend_load(s->store, s->registry, check_stored, s, why, why_len))
		        != 0) {
			rv = DSC_ESTATE;
			goto fail;
		}
	}
	if (o->tls_cert != NULL) {
		dsi_tls_files files = { .ca = o->tls_ca, .cert = o->tls_cert, .key = o->tls_key };
		if ((rv = dsi_tls_config(&tls, NNG_TLS_MODE_SERVER, &files, why, why_len)) != 0) {
			goto fail;
		}
	}
	dsi_events_options eo = {
		.url              = o->publish,
		.send_buffer      = o->event_buffer,
		.sync_interval_ms = o->sync_interval_ms,
		.max_connections  = o->max_connections,
		.tls              = tls,
		.metrics          = s->metrics,
	};
	if ((rv = dsi_events_create(&s->events, &eo, s->registry, &s->log, why, why_len)) != 0) {
		goto fail;
	}
	dsi_checker_options co = {
		.interval_ms         = o->health_interval_ms,
		.timeout_ms          = o->health_timeout_ms,
		.rise                = o->rise,
		.fall                = o->fall,
		.max_inflight        = o->max_checks,
		.deregister_after_ms = o->deregister_after_ms,
		.policy              = &s->policy,
		.after_change        = flush_events,
		.after_change_arg    = s,
		.reserve             = s->store != NULL ? reserve_revision : NULL,
		.release             = s->store != NULL ? release_revision : NULL,
		.reap                = s->store != NULL ? reap_submit : NULL,
		.store_arg           = s,
		.metrics             = s->metrics,
	};
	co.http = dsi_check_http_options_from(o);
	if (o->cluster != NULL) {
		co.submit_health          = health_submit; /* the same change on every node */
		co.owns                   = health_owned;  /* by one node each */
		co.ttl_alive              = ttl_alive;     /* heartbeats renew leases in etcd */
		s->dispatch.heartbeat     = heartbeat_cluster;
		s->dispatch.heartbeat_arg = s;
		dsi_etcd_backend_set_fence(s->store, dsi_cluster_node_view, s->node);
	}
	if ((rv = dsi_checker_create(&s->checker, &co, s->registry, &s->log)) != 0) {
		snprintf(why, why_len, "cannot create the health checker");
		goto fail;
	}
	check_restored(s);
	/* Half the REP pool at most may wait, as for one connection's requests. */
	if ((rv = dsi_revwait_create(&s->revwait, o->min_revision_wait_ms, o->workers / 2)) != 0) {
		goto fail;
	}
	s->dispatch.revwait = s->revwait;
	dsi_registry_set_observer(s->registry, on_change, s);
	/* Running from here: start-up registrations are stored like any other. */
	if (s->store != NULL
	    && (rv = dsi_writer_start(&s->writer, s->store, s->registry, &s->log, flush_events, s))
	        != 0) {
		snprintf(why, why_len, "cannot start the store's writer thread");
		goto fail;
	}
	s->dispatch.writer = s->writer;
	dsi_writer_set_metrics(s->writer, s->metrics);
	if (o->cluster != NULL) {
		dsi_etcd_applier a = {
			.lock = apply_lock, .unlock = apply_unlock, .after = flush_events, .arg = s
		};
		if ((rv = dsi_etcd_backend_follow(s->store, &a)) != 0) {
			snprintf(why, why_len, "cannot start the cluster's follower thread");
			goto fail;
		}
	}
	dsi_rep_options ro = {
		.listen      = o->listen,
		.n_listen    = o->n_listen,
		.max_request = o->max_request,
		.workers     = o->workers,
		.tls         = tls,
		/* limits: docs/limits.md */
		.max_connections    = o->max_connections,
		.idle_timeout_ms    = o->idle_timeout_ms,
		.reply_timeout_ms   = o->reply_timeout_ms,
		.max_conn_requests  = o->max_conn_requests,
		.max_request_memory = o->max_request_memory,
	};
	if ((rv = dsi_rep_create(&s->rep, &ro, &s->dispatch, &s->log, why, why_len)) != 0) {
		goto fail;
	}
	dsi_admin_options ao    = { .url = o->admin,
		   .tls                  = tls,
		   .registry             = s->registry,
		   .metrics              = s->metrics,
		   .writer               = s->writer,
		   .token                = o->token,
		   .auth_reads           = o->auth_reads,
		   .require              = o->require,
		   .n_require            = o->n_require,
		   .status               = &s->status };
	dsi_admin        *admin = NULL;
	if (o->admin != NULL && (rv = dsi_admin_create(&admin, &ao, &s->log, why, why_len)) != 0) {
		goto fail;
	}
	atomic_store(&s->admin, admin);
	s->status.writer = s->writer;
	for (size_t i = 0; i < o->n_listen && i < DSI_STATUS_MAX_LISTENERS; i++) {
		s->status.listeners[s->status.n_listeners++] = dsi_rep_bound_url(s->rep, i);
	}
	s->status.publish = dsi_events_url(s->events);
	s->status.admin   = admin != NULL ? dsi_admin_url(admin) : NULL;
	*out              = s;
	s                 = NULL;
fail:
	if (tls != NULL) {
		nng_tls_config_free(tls);
	}
	dsi_server_destroy(s);
	return rv;
}

int
dsi_server_start(dsi_server *s)
{
	int rv;
	if ((rv = dsi_events_start(s->events)) != 0
	    || (s->checker != NULL && (rv = dsi_checker_start(s->checker)) != 0)
	    || (rv = dsi_rep_start(s->rep)) != 0) {
		return rv;
	}
	dsi_info(&s->log, "publishing on %s", dsi_events_url(s->events));
	for (size_t i = 0; i < s->opts.n_listen; i++) {
		dsi_info(&s->log, "listening on %s", dsi_rep_bound_url(s->rep, i));
	}
	if (s->admin != NULL) {
		dsi_admin_start(s->admin);
		dsi_info(&s->log, "admin on %s", dsi_admin_url(s->admin));
	}
	return 0;
}

/*
 * Requests first (answering what is in flight, writes included), then
 * checks, then the writes still queued, then the last events.
 */
void
dsi_server_stop(dsi_server *s)
{
	dsi_admin_stop(s->admin); /* answers the blocking queries */
	/* Answers the requests waiting for a revision, so the drain does not wait for them. */
	dsi_revwait_stop(s->revwait);
	if (s->rep != NULL) {
		dsi_rep_stop(s->rep, s->opts.drain_ms);
	}
	dsi_checker_stop(s->checker);
	if (s->node != NULL) {
		dsi_etcd_backend_unfollow(s->store); /* no other node's change after this */
	}
	dsi_writer_stop(s->writer);
	dsi_events_stop(s->events);
	if (s->writer != NULL) {
		uint64_t commits, writes;
		dsi_writer_stats(s->writer, &commits, &writes);
		dsi_info(&s->log, "%s: %llu writes stored in %llu commits",
		    dsi_backend_describe(s->store), (unsigned long long) writes,
		    (unsigned long long) commits);
	}
}

void
dsi_server_destroy(dsi_server *s)
{
	if (s == NULL) {
		return;
	}
	/*
	 * The REP socket closes last: if nng 1.5.2 wedges its close (see
	 * dsi_close_bounded), nng's reaper is stuck and later closes would wait.
	 */
	dsi_checker_stop(s->checker); /* it may hold the writer's apply mutex */
	if (s->node != NULL) {
		dsi_etcd_backend_unfollow(s->store); /* it applies through the writer */
	}
	dsi_writer_stop(s->writer); /* its last replies go out through the REP items */
	/* No flush can reach it now; no handler reads the registry after this. */
	dsi_admin_destroy(atomic_exchange(&s->admin, NULL));
	if (s->registry != NULL) {
		dsi_registry_set_observer(s->registry, NULL, NULL);
	}
	dsi_checker_destroy(s->checker);
	dsi_writer_destroy(s->writer);
	dsi_backend_close(s->store);
	dsi_cluster_node_close(s->node); /* after the backend, which fences with it */
	dsi_events_destroy(s->events);
	dsi_revwait_destroy(s->revwait); /* its last answers go out through the REP items */
	dsi_rep_destroy(s->rep);
	dsi_registry_destroy(s->registry);
	dsi_metrics_destroy(s->metrics);
	free(s);
}

dsi_dispatch *
dsi_server_dispatch(dsi_server *s)
{
	return &s->dispatch;
}

dsi_registry *
dsi_server_registry(dsi_server *s)
{
	return s->registry;
}

const dsi_log *
dsi_server_log(dsi_server *s)
{
	return &s->log;
}

const char *
dsi_server_url(const dsi_server *s, size_t i)
{
	return dsi_rep_bound_url(s->rep, i);
}

const char *
dsi_server_publish_url(const dsi_server *s)
{
	return dsi_events_url(s->events);
}

const char *
dsi_server_admin_url(const dsi_server *s)
{
	dsi_admin *a = atomic_load(&((dsi_server *) s)->admin);
	return a != NULL ? dsi_admin_url(a) : NULL;
}

void
dsi_server_set_log_level(dsi_server *s, dsi_log_level level)
{
	s->log.level = level;
}

void
dsi_server_set_token(dsi_server *s, const char *token)
{
	atomic_store(&s->dispatch.token, token);
	dsi_admin_set_token(atomic_load(&s->admin), token);
}

void
dsi_server_set_health(dsi_server *s, const dsi_checker_settings *cs)
{
	if (s->checker != NULL) {
		dsi_checker_reconfigure(s->checker, cs);
	}
}

/*
 * nng 1.5.2 prepares each TLS accept, configuration included, before the
 * connection arrives, so the next connection after a swap would still get
 * the old certificate: one plain connection of ours, closed at once, takes
 * that accept. url is a bound URL (numeric host, real port).
 */
static void
use_up_accept(const char *url)
{
	nng_url         *u  = NULL;
	struct addrinfo *ai = NULL,
	                hints
	    = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	if (url == NULL || nng_url_parse(&u, url) != 0) {
		return;
	}
	const char *host = u->u_hostname;
	if (host[0] == 0 || strcmp(host, "0.0.0.0") == 0) {
		host = "127.0.0.1";
	} else if (strcmp(host, "::") == 0) {
		host = "::1";
	}
	if (getaddrinfo(host, u->u_port, &hints, &ai) == 0) {
		int            fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct timeval tv = { .tv_sec = 1 }; /* a full backlog must not hold the reload */
		if (fd >= 0) {
			(void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			(void) connect(fd, ai->ai_addr, ai->ai_addrlen);
			close(fd);
		}
		freeaddrinfo(ai);
	}
	nng_url_free(u);
}

int
dsi_server_set_tls(dsi_server *s, const dsi_tls_files *files, char *why, size_t why_len)
{
	nng_tls_config *tls = NULL; /* ours; each listener takes its own reference */
	int             rv, nrv;

	if ((rv = dsi_tls_config(&tls, NNG_TLS_MODE_SERVER, files, why, why_len)) != 0) {
		return rv;
	}
	if ((nrv = dsi_rep_set_tls(s->rep, tls)) != 0
	    || (nrv = dsi_events_set_tls(s->events, tls)) != 0
	    || (nrv = dsi_admin_set_tls(atomic_load(&s->admin), tls)) != 0) {
		rv = dsi_failf(DSC_ESTATE, why, why_len,
		    "a listener refused the new TLS configuration (%s); some may use it and others "
		    "the old one until a restart",
		    nng_strerror(nrv));
	}
	for (size_t i = 0; i < s->opts.n_listen; i++) {
		const char *url = dsi_rep_bound_url(s->rep, i);
		if (dsi_url_is_tls(url)) {
			use_up_accept(url);
		}
	}
	if (dsi_url_is_tls(dsi_events_url(s->events))) {
		use_up_accept(dsi_events_url(s->events));
	}
	const char *admin = dsi_server_admin_url(s);
	if (admin != NULL && strncmp(admin, "https:", 6) == 0) {
		use_up_accept(admin);
	}
	nng_tls_config_free(tls);
	return rv;
}
