/* Cluster mode's wiring in the server (cluster_node.h). */
#include "server/cluster_node.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/regfile.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "common/tokenfile.h"
#include "cluster/member.h"
#include "server/etcd_backend.h"

/* The etcd client's timeout for each call: a txn that takes longer is "unknown". */
#define ETCD_CALL_MS 5000
/* The node's lease: a dead node's instances are checked by others within this and an interval. */
#define MEMBER_TTL_MS 10000

struct dsi_cluster_node {
	_Atomic(dsi_member *) member; /* NULL until joined */
	const dsi_log        *log;
	char                 *urls;
	dsi_etcd_tls          tls; /* owned copy, for every (re)join */
	char                 *prefix;
	char                 *name;
	/*
	 * The keeper thread: joins when the name was held at start (a crashed
	 * predecessor's lease), leaves when this node suspects itself, and
	 * joins again REJOIN_MS later. Under mtx, with the self-preservation
	 * counts the checker thread updates.
	 */
	pthread_t       keeper;
	bool            keeping;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            stop;
	bool            leave;      /* asked of the keeper */
	int64_t         rejoin_at;  /* monotonic ms; 0: not out by choice */
	int64_t         window_at;  /* monotonic ms: the window of failures began */
	uint32_t        failures;   /* instances turned UNHEALTHY in the window */
	int64_t         trust_from; /* no self-suspicion before (after a rejoin) */
};

/*
 * Self-preservation: when at least SUSPECT_MIN and half of the instances
 * this node checks flip from HEALTHY to UNHEALTHY within SUSPECT_WINDOW_MS, the likelier
 * fault is this node's own network: it holds back UNHEALTHY writes and
 * gives up its membership, so the other nodes take its instances over and
 * judge them from their side. It joins again REJOIN_MS later and trusts
 * itself for TRUST_MS then (a real outage is then written by it too).
 */
#define SUSPECT_WINDOW_MS 10000
#define SUSPECT_MIN       3
#define REJOIN_MS         30000
#define TRUST_MS          120000

static bool
is_tls(const char *cluster)
{
	return strncmp(cluster, "etcds://", 8) == 0;
}

/*
 * etcd://a:1,b:2 as the etcd client's "http://a:1,http://b:2" (etcds://:
 * https://); malloc'd.
 */
static char *
etcd_urls(const char *cluster)
{
	const char *scheme  = is_tls(cluster) ? "https://" : "http://";
	const char *members = cluster + strlen(is_tls(cluster) ? "etcds://" : "etcd://");
	size_t      n = 1 + strlen(members) * 2 + 64, len = 0;
	char       *urls = malloc(n);
	for (const char *p = members; urls != NULL && *p != 0;) {
		size_t m = strcspn(p, ",");
		len += (size_t) snprintf(
		    urls + len, n - len, "%s%s%.*s", len > 0 ? "," : "", scheme, (int) m, p);
		p += m + (p[m] == ',');
	}
	return urls;
}

static dsi_etcd_tls
tls_of(const dsi_server_options *o)
{
	dsi_etcd_tls t = {
		.ca_file = o->cluster_ca, .cert_file = o->cluster_cert, .key_file = o->cluster_key
	};
	return t;
}

int
dsi_cluster_tls_check(const dsi_server_options *o, char *why, size_t why_len)
{
	static const dsi_setting files[]
	    = { DSI_SET_CLUSTER_CA, DSI_SET_CLUSTER_CERT, DSI_SET_CLUSTER_KEY };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (o->source[files[i]] == DSI_SRC_DEFAULT) {
			continue;
		}
		if (o->cluster == NULL || !is_tls(o->cluster)) {
			return dsi_failf(DSC_EINVAL, why, why_len,
			    "%s: TLS to etcd is configured, but --cluster is %s: use "
			    "etcds://HOST:PORT",
			    o->origin[files[i]],
			    o->cluster == NULL ? "off" : "etcd:// (plain HTTP)");
		}
	}
	if ((o->cluster_cert == NULL) != (o->cluster_key == NULL)) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: an etcd client certificate needs both --cluster-cert and --cluster-key",
		    o->origin[o->cluster_cert != NULL ? DSI_SET_CLUSTER_CERT
		                                      : DSI_SET_CLUSTER_KEY]);
	}
	/* Readable now, rather than an error of the first call to etcd. */
	struct stat st;
	int         fd, rv = 0;
	if (o->cluster_ca != NULL
	    && (rv = dsi_regfile_open(o->cluster_ca, "the etcd CA file", &fd, &st, why, why_len))
	        == 0) {
		close(fd);
	}
	if (rv == 0 && o->cluster_cert != NULL
	    && (rv = dsi_regfile_open(
	            o->cluster_cert, "the etcd client certificate", &fd, &st, why, why_len))
	        == 0) {
		close(fd);
		rv = dsi_secret_file_check(o->cluster_key, "the etcd client key", why, why_len);
	}
	return rv;
}

static const char *
node_name(const dsi_server_options *o, char *host, size_t len)
{
	if (o->node_name != NULL) {
		return o->node_name;
	}
	if (gethostname(host, len - 1) != 0 || host[0] == 0) {
		snprintf(host, len, "discoveryd");
	}
	host[len - 1] = 0;
	return host;
}

static void
on_member(void *arg, dsi_member_event ev, const char *name, int64_t create_revision)
{
	dsi_cluster_node *n = arg;
	(void) create_revision;
	switch (ev) {
	case DSI_MEMBER_JOINED:
		dsi_info(n->log, "cluster: node %s joined", name);
		break;
	case DSI_MEMBER_LEFT:
		dsi_info(
		    n->log, "cluster: node %s left; its instances are checked by the others", name);
		break;
	case DSI_MEMBER_ENDED:
		dsi_warn(n->log,
		    "cluster: this node (%s) is not a member now: it checks nothing "
		    "until it has joined again",
		    name);
		break;
	case DSI_MEMBER_RESTORED:
		dsi_info(n->log, "cluster: this node (%s) is a member again", name);
		break;
	}
}

static int
join(dsi_cluster_node *n, dsc_error *err)
{
	dsi_member *m;
	int rv = dsi_member_open(&m, n->urls, &n->tls, n->prefix, n->name, NULL, MEMBER_TTL_MS,
	    n->log, on_member, n, err);
	if (rv == 0) {
		atomic_store(&n->member, m);
	}
	return rv;
}

/* The keeper: joins, leaves and joins again as asked (see the struct). */
static void *
keeper_main(void *arg)
{
	dsi_cluster_node *n = arg;
	dsc_error         err;
	pthread_mutex_lock(&n->mtx);
	while (!n->stop) {
		struct timespec ts;
		dsi_realtime_after(&ts, 1000);
		pthread_cond_timedwait(&n->cv, &n->mtx, &ts);
		dsi_member *m   = atomic_load(&n->member);
		int64_t     now = dsi_monotonic_ms();
		if (n->stop) {
			break;
		}
		pthread_mutex_unlock(&n->mtx);
		if (m == NULL && join(n, &err) == 0) {
			dsi_info(n->log, "cluster: joined as %s", n->name);
		}
		pthread_mutex_lock(&n->mtx);
		if (m != NULL && n->leave) {
			n->leave     = false;
			n->rejoin_at = now + REJOIN_MS;
			pthread_mutex_unlock(&n->mtx);
			dsi_member_leave(m);
			pthread_mutex_lock(&n->mtx);
		} else if (m != NULL && n->rejoin_at != 0 && now >= n->rejoin_at) {
			pthread_mutex_unlock(&n->mtx);
			int rv = dsi_member_rejoin(m, ETCD_CALL_MS);
			pthread_mutex_lock(&n->mtx);
			if (rv == 0) {
				n->rejoin_at  = 0;
				n->failures   = 0;
				n->trust_from = dsi_monotonic_ms() + TRUST_MS;
			}
		}
	}
	pthread_mutex_unlock(&n->mtx);
	return NULL;
}

/* Instances this node checks now (it owns them). */
static size_t
owned(dsi_cluster_node *n, dsi_registry *r)
{
	dsi_instances all = { NULL, 0 };
	size_t        k   = 0;
	if (dsi_registry_get_all(r, NULL, &all, NULL) == 0) {
		for (size_t i = 0; i < all.count; i++) {
			k += dsi_cluster_node_owns(
			    n, all.items[i]->service, all.items[i]->endpoint);
		}
		dsi_instances_free(&all);
	}
	return k;
}

/*
 * Counts a turn to UNHEALTHY (a flip: from HEALTHY); true when it is to be
 * held back (this node suspects itself, now or already). The checker thread
 * calls it.
 */
static bool
suspect_self(dsi_cluster_node *n, dsi_registry *r, bool flip)
{
	int64_t now = dsi_monotonic_ms();
	pthread_mutex_lock(&n->mtx);
	bool held = n->rejoin_at != 0 || n->leave;
	if (!held && !flip) {
		pthread_mutex_unlock(&n->mtx);
		return false;
	}
	if (!held) {
		if (now - n->window_at > SUSPECT_WINDOW_MS) {
			n->window_at = now;
			n->failures  = 0;
		}
		n->failures++;
	}
	bool     check    = !held && n->failures >= SUSPECT_MIN && now >= n->trust_from;
	uint32_t failures = n->failures;
	pthread_mutex_unlock(&n->mtx);
	if (check) {
		dsi_membership v;
		size_t         members = 0, mine = owned(n, r);
		if (dsi_cluster_node_view(n, &v) == 0) {
			members = v.n_members;
			dsi_member_view_free(&v);
		}
		/* Alone, there is nobody to hand the instances to: judge them anyway. */
		if (members > 1 && (size_t) failures * 2 >= mine) {
			dsi_warn(n->log,
			    "cluster: %u of the %zu instances this node checks failed within %d s: "
			    "suspecting this node's own network, it holds back their failures and "
			    "hands its checks to the other %zu nodes for %d s",
			    failures, mine, SUSPECT_WINDOW_MS / 1000, members - 1,
			    REJOIN_MS / 1000);
			pthread_mutex_lock(&n->mtx);
			n->leave = true;
			pthread_cond_broadcast(&n->cv);
			pthread_mutex_unlock(&n->mtx);
			held = true;
		}
	}
	return held;
}

int
dsi_cluster_node_open(dsi_cluster_node **out, const dsi_server_options *o, const dsi_log *log,
    char *why, size_t why_len)
{
	char              host[256];
	dsc_error         err;
	dsi_cluster_node *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	n->log = log;
	pthread_mutex_init(&n->mtx, NULL);
	pthread_cond_init(&n->cv, NULL);
	n->urls          = etcd_urls(o->cluster);
	n->prefix        = strdup(o->cluster_prefix);
	n->name          = strdup(node_name(o, host, sizeof(host)));
	dsi_etcd_tls tls = tls_of(o);
	if (n->urls == NULL || n->prefix == NULL || n->name == NULL
	    || dsi_etcd_tls_copy(&n->tls, &tls) != 0) {
		dsi_cluster_node_close(n);
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	int rv = join(n, &err);
	if (rv == DSC_ESTATE) {
		dsi_warn(log,
		    "cluster: %s; serving meanwhile, checking nothing, joining when the "
		    "name is free",
		    err.message);
	} else if (rv != 0) {
		dsi_cluster_node_close(n);
		return dsi_failf(rv, why, why_len, "cannot join the cluster: %s", err.message);
	}
	if (pthread_create(&n->keeper, NULL, keeper_main, n) != 0) {
		dsi_cluster_node_close(n);
		return dsi_failf(DSC_ENOMEM, why, why_len, "cannot start a thread");
	}
	n->keeping = true;
	*out       = n;
	return 0;
}

void
dsi_cluster_node_close(dsi_cluster_node *n)
{
	if (n == NULL) {
		return;
	}
	pthread_mutex_lock(&n->mtx);
	n->stop = true;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mtx);
	if (n->keeping) {
		pthread_join(n->keeper, NULL);
	}
	dsi_member_close(atomic_load(&n->member));
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mtx);
	free(n->urls);
	dsi_etcd_tls_clear(&n->tls);
	free(n->prefix);
	free(n->name);
	free(n);
}

bool
dsi_cluster_node_owns(dsi_cluster_node *n, const char *service, const char *endpoint)
{
	dsi_membership v;
	dsi_member    *m = n != NULL ? atomic_load(&n->member) : NULL;
	if (m == NULL || dsi_member_view(m, &v) != 0) {
		return false;
	}
	const char *owner = dsi_member_owner(&v, service, endpoint);
	bool mine = v.self_create_revision != 0 && owner != NULL && strcmp(owner, v.self) == 0;
	dsi_member_view_free(&v);
	return mine;
}

int
dsi_cluster_node_view(void *arg, dsi_membership *out)
{
	dsi_cluster_node *n = arg;
	dsi_member       *m = n != NULL ? atomic_load(&n->member) : NULL;
	return m != NULL ? dsi_member_view(m, out) : DSC_ENOTFOUND;
}

int
dsi_cluster_backend_open(
    dsi_backend **out, const dsi_server_options *o, const dsi_log *log, char *why, size_t why_len)
{
	char host[256];

	if (o->source[DSI_SET_DATA] != DSI_SRC_DEFAULT && strcmp(o->data, ":memory:") != 0) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "--data (from %s) does not apply with --cluster: the cluster's registry is in "
		    "etcd",
		    o->origin[DSI_SET_DATA]);
	}
	char *urls = etcd_urls(o->cluster);
	if (urls == NULL) {
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	dsi_etcd_backend_options eo = {
		.endpoints  = urls,
		.prefix     = o->cluster_prefix,
		.node       = node_name(o, host, sizeof(host)),
		.timeout_ms = o->cluster_timeout_ms,
		.tls        = tls_of(o),
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
	dsi_write         w; /* first */
	dsi_registry     *registry;
	dsi_cluster_node *node;
	const dsi_log    *log;
	dsc_health        health;
	int               result;
	char              reason[96];
	char              why[400];
	char             *service;
	char             *endpoint;
} health_write;

static int
health_prepare(dsi_write *w, uint32_t pending_service, uint32_t pending_total)
{
	health_write *hw = (health_write *) w;
	(void) pending_service;
	(void) pending_total;
	/* Decided again here, in the writer's order: only the owner writes health. */
	if (!dsi_cluster_node_owns(hw->node, hw->service, hw->endpoint)) {
		snprintf(hw->why, sizeof(hw->why), "another node checks it now");
		return DSC_ESTATE;
	}
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
	if (hw->result != 0 && hw->result != DSC_ENOTFOUND && hw->result != DSC_ESTATE) {
		/* The checker hands it again after its next check. */
		dsi_warn(hw->log, "health of %s not stored: %s", hw->service, hw->why);
	}
	free(hw->service);
	free(hw->endpoint);
	free(hw);
}

void
dsi_cluster_submit_health(dsi_writer *wr, dsi_registry *r, dsi_cluster_node *n, const dsi_log *log,
    const char *service, const char *endpoint, dsc_health health, const char *reason)
{
	if (health == DSC_HEALTH_UNHEALTHY && n != NULL) {
		/*
		 * Only a flip from HEALTHY says something about this node: new
		 * instances of a broken service (UNKNOWN to UNHEALTHY) fail on
		 * every node alike, and counting them made every node leave at once.
		 */
		bool       healthy;
		dsc_health was = DSC_HEALTH_UNKNOWN;
		(void) dsi_registry_is_healthy(r, service, endpoint, &healthy, &was, NULL);
		if (suspect_self(n, r, was == DSC_HEALTH_HEALTHY)) {
			return; /* held back: another node judges it from its side */
		}
	}
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
	hw->node       = n;
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
