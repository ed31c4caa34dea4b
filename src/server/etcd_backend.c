/*
 * The etcd backend: keys, the journal, loading, and the writer's
 * transactions (see etcd_backend.h; the follower is etcd_follow.c).
 */
#include "server/etcd_backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container_of.h"
#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/etcd_backend_impl.h"

/* How long unhold waits for the follower after a lost race, at most. */
#define CATCH_UP_MS 5000

static etcd_backend *
eb_of(dsi_backend *b)
{
	return DSI_CONTAINER_OF(b, etcd_backend, base);
}

static const etcd_backend *
ceb_of(const dsi_backend *b)
{
	return (const etcd_backend *) (const void *) b; /* base is the first member */
}

/* ---- keys ---- */

static const char hexdigits[] = "0123456789abcdef";

/* Hex keeps the endpoints' byte order, so a service's keys sort as its instances do. */
char *
dsi_etcdb_instance_key(const etcd_backend *e, const char *service, const char *endpoint)
{
	size_t ep  = endpoint != NULL ? strlen(endpoint) : 0;
	size_t len = strlen(e->prefix) + sizeof("instances/") + strlen(service) + 1 + 2 * ep + 1;
	char  *k   = malloc(len);
	if (k == NULL) {
		return NULL;
	}
	size_t n = (size_t) snprintf(k, len, "%sinstances/%s/", e->prefix, service);
	for (size_t i = 0; i < ep; i++) {
		k[n++] = hexdigits[(unsigned char) endpoint[i] >> 4];
		k[n++] = hexdigits[(unsigned char) endpoint[i] & 15];
	}
	k[n] = 0;
	return k;
}

char *
dsi_etcdb_key(const etcd_backend *e, const char *name)
{
	size_t len = strlen(e->prefix) + strlen(name) + 1;
	char  *k   = malloc(len);
	if (k != NULL) {
		snprintf(k, len, "%s%s", e->prefix, name);
	}
	return k;
}

static int
unhex(const char *s, size_t n, char **out)
{
	if (n % 2 != 0 || (*out = malloc(n / 2 + 1)) == NULL) {
		return n % 2 != 0 ? DSC_EPROTO : DSC_ENOMEM;
	}
	for (size_t i = 0; i < n; i += 2) {
		const char *hi = memchr(hexdigits, s[i], 16), *lo = memchr(hexdigits, s[i + 1], 16);
		if (hi == NULL || lo == NULL || s[i] == 0 || s[i + 1] == 0) {
			free(*out);
			return DSC_EPROTO;
		}
		(*out)[i / 2] = (char) (((hi - hexdigits) << 4) | (lo - hexdigits));
	}
	(*out)[n / 2] = 0;
	return 0;
}

/* ---- the journal: "v1 COUNTER NODE SEQ\n" then one line per change ---- */

void
dsi_etcdb_journal_free(journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->e[i].service);
		free(j->e[i].endpoint);
	}
	free(j->e);
	memset(j, 0, sizeof(*j));
}

int
dsi_etcdb_journal_parse(const uint8_t *data, size_t len, journal *out)
{
	const char *p = (const char *) data, *end = p + len;
	const char *nl = memchr(p, '\n', len);
	char        head[160];

	memset(out, 0, sizeof(*out));
	if (nl == NULL || (size_t) (nl - p) >= sizeof(head)) {
		return DSC_EPROTO;
	}
	memcpy(head, p, (size_t) (nl - p));
	head[nl - p] = 0;
	if (sscanf(head, "v1 %" SCNu64, &out->counter) != 1) {
		return DSC_EPROTO;
	}
	for (p = nl + 1; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL || nl - p < 3
		    || p[1] != ' ') {
			goto bad;
		}
		journal_entry *ne = realloc(out->e, (out->n + 1) * sizeof(*ne));
		if (ne == NULL) {
			dsi_etcdb_journal_free(out);
			return DSC_ENOMEM;
		}
		out->e            = ne;
		journal_entry *je = &out->e[out->n++];
		memset(je, 0, sizeof(*je));
		je->kind        = (journal_kind) p[0];
		const char *svc = p + 2, *sp = memchr(svc, ' ', (size_t) (nl - svc));
		const char *svc_end = sp != NULL ? sp : nl;
		if ((je->service = strndup(svc, (size_t) (svc_end - svc))) == NULL) {
			goto bad;
		}
		if (je->kind == J_SERVICE) {
			if (sp != NULL) {
				goto bad;
			}
		} else if (je->kind != J_REGISTER && je->kind != J_DEREGISTER) {
			goto bad;
		} else if (sp == NULL
		    || unhex(sp + 1, (size_t) (nl - sp - 1), &je->endpoint) != 0) {
			goto bad;
		}
	}
	return 0;
bad:
	dsi_etcdb_journal_free(out);
	return DSC_EPROTO;
}

/* ---- records ---- */

int
dsi_etcdb_decode(const uint8_t *data, size_t len, Discovery__V1__StoredInstance **msg,
    dsi_registration *reg, dsc_kv **kv)
{
	*kv  = NULL;
	*msg = discovery__v1__stored_instance__unpack(NULL, len, data);
	if (*msg == NULL || (*msg)->instance == NULL) {
		if (*msg != NULL) {
			discovery__v1__stored_instance__free_unpacked(*msg, NULL);
		}
		return DSC_EPROTO;
	}
	const Discovery__V1__Instance *in = (*msg)->instance;
	if (in->n_metadata > 0 && (*kv = calloc(in->n_metadata, sizeof(**kv))) == NULL) {
		discovery__v1__stored_instance__free_unpacked(*msg, NULL);
		return DSC_ENOMEM;
	}
	for (size_t i = 0; i < in->n_metadata; i++) {
		(*kv)[i].key   = in->metadata[i]->key;
		(*kv)[i].value = in->metadata[i]->value;
	}
	*reg = (dsi_registration) {
		.service          = in->service,
		.endpoint         = in->endpoint,
		.metadata         = *kv,
		.n_metadata       = in->n_metadata,
		.health_path      = in->health_path,
		.ttl_ms           = in->ttl_ms,
		.weight           = in->weight,
		.registered_at_ms = in->registered_at_ms,
		.origin = (*msg)->origin == DSI_ORIGIN_CONFIG ? DSI_ORIGIN_CONFIG : DSI_ORIGIN_API,
	};
	return 0;
}

/* A prepared register as the bytes of its key; malloc'd into *out. */
static int
encode(const dsi_registry_op_info *op, uint8_t **out, size_t *len)
{
	Discovery__V1__Instance                  in  = DISCOVERY__V1__INSTANCE__INIT;
	Discovery__V1__StoredInstance            rec = DISCOVERY__V1__STORED_INSTANCE__INIT;
	Discovery__V1__Instance__MetadataEntry  *ents;
	Discovery__V1__Instance__MetadataEntry **ptrs;
	const char                              *m = op->meta;

	ents = calloc(op->n_meta + 1, sizeof(*ents));
	ptrs = calloc(op->n_meta + 1, sizeof(*ptrs));
	if (ents == NULL || ptrs == NULL) {
		free(ents);
		free(ptrs);
		return DSC_ENOMEM;
	}
	for (uint32_t i = 0; i < op->n_meta; i++) {
		discovery__v1__instance__metadata_entry__init(&ents[i]);
		ents[i].key = (char *) m;
		m += strlen(m) + 1;
		ents[i].value = (char *) m;
		m += strlen(m) + 1;
		ptrs[i] = &ents[i];
	}
	in.service          = (char *) op->service;
	in.endpoint         = (char *) op->endpoint;
	in.metadata         = ptrs;
	in.n_metadata       = op->n_meta;
	in.health_path      = (char *) (op->health_path != NULL ? op->health_path : "");
	in.ttl_ms           = op->ttl_ms;
	in.weight           = op->weight;
	in.registered_at_ms = op->registered_at_ms;
	rec.instance        = &in;
	rec.origin          = op->origin;
	*len                = discovery__v1__stored_instance__get_packed_size(&rec);
	int rv              = (*out = malloc(*len + 1)) != NULL ? 0 : DSC_ENOMEM;
	if (rv == 0) {
		discovery__v1__stored_instance__pack(&rec, *out);
	}
	free(ents);
	free(ptrs);
	return rv;
}

/* ---- loading ---- */

/* The instances of one read, for a resync to find what etcd no longer has. */
typedef struct seen {
	char **keys; /* "service\nendpoint", sorted */
	size_t n, cap;
} seen;

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
load_kv(etcd_backend *e, dsi_registry *r, const dsi_etcd_kv *kv, dsi_backend_check_fn check,
    void *check_arg, seen *sn, char *why, size_t why_len)
{
	Discovery__V1__StoredInstance *msg;
	dsi_registration               reg;
	dsc_kv                        *meta;
	char                           msgbuf[256];
	bool                           created;
	int                            rv;

	if (dsi_etcdb_decode(kv->value.data, kv->value.len, &msg, &reg, &meta) != 0) {
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "etcd key %s does not hold a stored instance; it was changed outside "
		    "discoveryd: delete it, or use another --cluster-prefix",
		    (const char *) kv->key.data);
	}
	if (check != NULL && check(check_arg, &reg, msgbuf, sizeof(msgbuf)) != 0) {
		rv = dsi_failf(DSC_ESTATE, why, why_len,
		    "etcd holds instance %s %s that this configuration refuses: %s", reg.service,
		    reg.endpoint, msgbuf);
	} else {
		rv = dsi_registry_register(
		    r, &reg, dsi_wall_ms(), NULL, &created, NULL, msgbuf, sizeof(msgbuf));
		if (rv != 0) {
			rv = dsi_failf(DSC_ESTATE, why, why_len, "cannot load %s %s from %s: %s",
			    reg.service, reg.endpoint, e->label, msgbuf[0] != 0 ? msgbuf : "");
		}
	}
	if (rv == 0 && sn != NULL) {
		size_t len = strlen(reg.service) + strlen(reg.endpoint) + 2;
		char  *k   = malloc(len);
		char **nk  = sn->n == sn->cap ? realloc(sn->keys, (sn->cap * 2 + 16) * sizeof(*nk))
		                              : sn->keys;
		if (k == NULL || nk == NULL) {
			free(k);
			rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
		} else {
			sn->cap  = nk != sn->keys ? sn->cap * 2 + 16 : sn->cap;
			sn->keys = nk;
			snprintf(k, len, "%s\n%s", reg.service, reg.endpoint);
			sn->keys[sn->n++] = k;
		}
	}
	free(meta);
	discovery__v1__stored_instance__free_unpacked(msg, NULL);
	return rv;
}

/* Removes what r holds and sn does not (a resync). */
static void
remove_unseen(dsi_registry *r, seen *sn)
{
	dsi_instances all;
	if (dsi_registry_get_all(r, NULL, &all, NULL) != 0) {
		return;
	}
	qsort(sn->keys, sn->n, sizeof(*sn->keys), cmp_str);
	for (size_t i = 0; i < all.count; i++) {
		char  key[4200];
		char *kp = key;
		snprintf(key, sizeof(key), "%s\n%s", all.items[i]->service, all.items[i]->endpoint);
		if (bsearch(&kp, sn->keys, sn->n, sizeof(*sn->keys), cmp_str) == NULL) {
			uint32_t removed;
			dsi_registry_deregister(
			    r, all.items[i]->service, all.items[i]->endpoint, &removed, NULL);
		}
	}
	dsi_instances_free(&all);
}

int
dsi_etcdb_read_all(etcd_backend *e, dsi_etcd *h, dsi_registry *r, dsi_backend_check_fn check,
    void *check_arg, bool sync, int64_t *etcd_rev, char *why, size_t why_len)
{
	char               *revkey = dsi_etcdb_key(e, "rev");
	char               *from   = dsi_etcdb_instance_key(e, "", NULL);
	dsi_etcd_range_resp rr     = { 0 };
	dsc_error           err;
	uint64_t            counter = 0;
	seen                sn      = { 0 };
	int                 rv;

	if (revkey == NULL || from == NULL) {
		rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
		goto done;
	}
	from[strlen(from) - 1] = 0; /* "<prefix>instances/" */
	dsi_etcd_range_req rq  = { .key = revkey, .key_len = strlen(revkey) };
	if ((rv = dsi_etcd_range(h, &rq, &rr, &err)) != 0) {
		rv = dsi_failf(rv, why, why_len, "cannot read %s: %s", e->label, err.message);
		goto done;
	}
	int64_t at = rr.revision;
	e->rev_mod = 0;
	if (rr.n_kvs == 1) {
		journal j;
		if (dsi_etcdb_journal_parse(rr.kvs[0].value.data, rr.kvs[0].value.len, &j) != 0) {
			rv = dsi_failf(DSC_ESTATE, why, why_len,
			    "etcd key %s does not hold discoveryd's counter; use another "
			    "--cluster-prefix",
			    revkey);
			dsi_etcd_range_resp_free(&rr);
			goto done;
		}
		counter    = j.counter;
		e->rev_mod = rr.kvs[0].mod_revision;
		dsi_etcdb_journal_free(&j);
	}
	dsi_etcd_range_resp_free(&rr);
	/* Page through the instances at the counter's revision: one consistent picture. */
	char  *key  = strdup(from);
	size_t klen = strlen(from);
	for (bool more = key != NULL; more;) {
		dsi_etcd_range_req pq
		    = { .key = key, .key_len = klen, .revision = at, .limit = 500 };
		char *end = strdup(from);
		if (end == NULL) {
			break;
		}
		end[strlen(end) - 1]++; /* "<prefix>instances0": the end of the prefix */
		pq.range_end     = end;
		pq.range_end_len = strlen(end);
		memset(&rr, 0, sizeof(rr));
		rv = dsi_etcd_range(h, &pq, &rr, &err);
		free(end);
		if (rv != 0) {
			rv = dsi_failf(
			    rv, why, why_len, "cannot read %s: %s", e->label, err.message);
			break;
		}
		for (size_t i = 0; rv == 0 && i < rr.n_kvs; i++) {
			rv = load_kv(
			    e, r, &rr.kvs[i], check, check_arg, sync ? &sn : NULL, why, why_len);
		}
		more = rv == 0 && rr.more && rr.n_kvs > 0;
		if (more) {
			/* On from the last key + "\0". */
			const dsi_etcd_bytes *last = &rr.kvs[rr.n_kvs - 1].key;
			char                 *nk   = malloc(last->len + 1);
			if (nk == NULL) {
				rv   = DSC_ENOMEM;
				more = false;
			} else {
				memcpy(nk, last->data, last->len);
				nk[last->len] = 0;
				free(key);
				key  = nk;
				klen = last->len + 1;
			}
		}
		dsi_etcd_range_resp_free(&rr);
	}
	free(key);
	if (rv == 0 && sync) {
		remove_unseen(r, &sn);
	}
	if (rv == 0) {
		if (sync && dsi_registry_revision(r) > counter) {
			dsi_error(e->log,
			    "%s: this node's revision %" PRIu64
			    " is ahead of the cluster's %" PRIu64
			    "; its events will not match the other nodes' until it restarts",
			    e->label, dsi_registry_revision(r), counter);
		}
		dsi_registry_set_revision(r, counter);
		*etcd_rev = at;
	}
done:
	for (size_t i = 0; i < sn.n; i++) {
		free(sn.keys[i]);
	}
	free(sn.keys);
	free(revkey);
	free(from);
	return rv;
}

static int
eb_load(dsi_backend *b, dsi_registry *r, dsi_backend_check_fn check, void *check_arg, char *why,
    size_t why_len)
{
	etcd_backend *e = eb_of(b);
	int64_t       at;
	dsc_error     err;
	int           rv;

	if (e->etcd == NULL
	    && (rv = dsi_etcd_open(&e->etcd, e->endpoints, e->timeout_ms, &err)) != 0) {
		return dsi_failf(rv, why, why_len, "%s: %s", e->label, err.message);
	}
	pthread_mutex_lock(&e->gate);
	rv = dsi_etcdb_read_all(e, e->etcd, r, check, check_arg, false, &at, why, why_len);
	pthread_mutex_unlock(&e->gate);
	if (rv == 0) {
		e->registry = r;
		pthread_mutex_lock(&e->mtx);
		e->applied = at;
		pthread_mutex_unlock(&e->mtx);
	}
	return rv;
}

/* ---- the writer's transaction ---- */

static void
txn_clear(etcd_backend *e)
{
	for (size_t i = 0; i < e->n_owned; i++) {
		free(e->owned[i]);
	}
	e->n_owned = 0;
	e->n_ops   = 0;
	e->jlen    = 0;
	e->n_revs  = 0;
	e->failed  = false;
}

static int
txn_fail(etcd_backend *e, const char *fmt, const char *arg)
{
	if (!e->failed) {
		snprintf(e->err, sizeof(e->err), fmt, arg);
	}
	e->failed = true;
	return DSC_EUNAVAILABLE;
}

/* Keeps p until the transaction ends; false (and p freed) when out of memory. */
static bool
own(etcd_backend *e, void *p)
{
	if (p == NULL) {
		return false;
	}
	if (e->n_owned == e->cap_owned) {
		size_t ncap = e->cap_owned * 2 + 16;
		void **n    = realloc(e->owned, ncap * sizeof(*n));
		if (n == NULL) {
			free(p);
			return false;
		}
		e->owned     = n;
		e->cap_owned = ncap;
	}
	e->owned[e->n_owned++] = p;
	return true;
}

static dsi_etcd_op *
add_op(etcd_backend *e)
{
	if (e->n_ops == e->cap_ops) {
		size_t       ncap = e->cap_ops * 2 + 16;
		dsi_etcd_op *n    = realloc(e->ops, ncap * sizeof(*n));
		if (n == NULL) {
			return NULL;
		}
		e->ops     = n;
		e->cap_ops = ncap;
	}
	dsi_etcd_op *op = &e->ops[e->n_ops++];
	memset(op, 0, sizeof(*op));
	return op;
}

static bool
journal_add(etcd_backend *e, char kind, const char *service, const char *endpoint)
{
	size_t need = 4 + strlen(service) + (endpoint != NULL ? 2 * strlen(endpoint) + 1 : 0);
	if (e->jlen + need + 1 > e->jcap) {
		size_t ncap = (e->jlen + need + 1) * 2;
		char  *n    = realloc(e->jtext, ncap);
		if (n == NULL) {
			return false;
		}
		e->jtext = n;
		e->jcap  = ncap;
	}
	e->jlen += (size_t) snprintf(e->jtext + e->jlen, e->jcap - e->jlen, "%c %s%s", kind,
	    service, endpoint != NULL ? " " : "");
	for (size_t i = 0; endpoint != NULL && endpoint[i] != 0; i++) {
		e->jtext[e->jlen++] = hexdigits[(unsigned char) endpoint[i] >> 4];
		e->jtext[e->jlen++] = hexdigits[(unsigned char) endpoint[i] & 15];
	}
	e->jtext[e->jlen++] = '\n';
	e->jtext[e->jlen]   = 0;
	return true;
}

static int
eb_begin(dsi_backend *b)
{
	txn_clear(eb_of(b));
	return 0;
}

static int
eb_write(dsi_backend *b, const dsi_registry_op_info *op)
{
	etcd_backend *e = eb_of(b);
	if (e->failed) {
		return DSC_EUNAVAILABLE;
	}
	if (!op->changes) {
		return 0;
	}
	bool         service_wide = op->endpoint == NULL;
	char        *key          = dsi_etcdb_instance_key(e, op->service, op->endpoint);
	dsi_etcd_op *eo           = own(e, key) ? add_op(e) : NULL;
	if (eo == NULL) {
		return txn_fail(e, "out of memory%s", "");
	}
	eo->key     = key;
	eo->key_len = strlen(key);
	if (op->removes > 0) {
		eo->type   = DSI_ETCD_OP_DELETE;
		eo->prefix = service_wide; /* one operation however many instances */
	} else {
		uint8_t *val;
		size_t   len;
		if (encode(op, &val, &len) != 0 || !own(e, val)) {
			return txn_fail(e, "out of memory%s", "");
		}
		eo->type      = DSI_ETCD_OP_PUT;
		eo->value     = val;
		eo->value_len = len;
	}
	char kind = op->removes == 0 ? J_REGISTER : service_wide ? J_SERVICE : J_DEREGISTER;
	if (!journal_add(e, kind, op->service, op->endpoint)) {
		return txn_fail(e, "out of memory%s", "");
	}
	e->n_revs += op->revisions;
	return 0;
}

static int
eb_set_revision(dsi_backend *b, uint64_t rev)
{
	eb_of(b)->reserved = rev; /* nothing to store: the counter numbers every change */
	return 0;
}

/*
 * After a txn whose outcome is unknown: did it commit? Our sequence key
 * says. 0 (committed, *h its revision), DSC_ESTATE (it did not, or not
 * yet), or another error (etcd cannot say now).
 */
static int
read_back(etcd_backend *e, const char *seqkey, const char *seq, int64_t *h)
{
	dsi_etcd_range_resp rr = { 0 };
	dsc_error           err;
	dsi_etcd_range_req  rq = { .key = seqkey, .key_len = strlen(seqkey) };
	int                 rv = dsi_etcd_range(e->etcd, &rq, &rr, &err);
	if (rv != 0) {
		return rv;
	}
	rv = DSC_ESTATE;
	if (rr.n_kvs == 1 && strcmp((const char *) rr.kvs[0].value.data, seq) == 0) {
		*h = rr.kvs[0].mod_revision;
		rv = 0;
	}
	dsi_etcd_range_resp_free(&rr);
	return rv;
}

static int
eb_commit(dsi_backend *b, uint64_t rev)
{
	etcd_backend *e = eb_of(b);
	char          seq[32], head[200];
	dsc_error     err;
	int           rv;

	(void) rev;
	if (e->failed) {
		return DSC_EUNAVAILABLE;
	}
	if (e->n_ops == 0) {
		return 0; /* only a reservation, which etcd does not need */
	}
	uint64_t counter = dsi_registry_revision(e->registry) + e->n_revs;
	snprintf(seq, sizeof(seq), "%" PRIu64, ++e->seq);
	int   hl    = snprintf(head, sizeof(head), "v1 %" PRIu64 " %s %s\n", counter, e->node, seq);
	char *value = malloc((size_t) hl + e->jlen + 1);
	char *revkey  = dsi_etcdb_key(e, "rev");
	char *seqname = malloc(strlen(e->node) + sizeof("txns/"));
	char *seqkey  = NULL;
	if (seqname != NULL) {
		sprintf(seqname, "txns/%s", e->node);
		seqkey = dsi_etcdb_key(e, seqname);
		free(seqname);
	}
	if (!own(e, value) || !own(e, revkey) || !own(e, seqkey)) {
		return txn_fail(e, "out of memory%s", "");
	}
	memcpy(value, head, (size_t) hl);
	memcpy(value + hl, e->jtext != NULL ? e->jtext : "", e->jlen + 1);
	dsi_etcd_op *op = add_op(e);
	dsi_etcd_op *sq = op != NULL ? add_op(e) : NULL;
	if (sq == NULL) {
		return txn_fail(e, "out of memory%s", "");
	}
	op  = &e->ops[e->n_ops - 2]; /* add_op may have moved the array */
	*op = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
		.key                = revkey,
		.key_len            = strlen(revkey),
		.value              = value,
		.value_len          = (size_t) hl + e->jlen };
	*sq = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
		.key                = seqkey,
		.key_len            = strlen(seqkey),
		.value              = seq,
		.value_len          = strlen(seq) };
	/* rev_mod 0: the counter key must not exist yet (create_revision 0). */
	dsi_etcd_cmp cmp = { .target = e->rev_mod != 0 ? DSI_ETCD_MOD : DSI_ETCD_CREATE,
		.result              = DSI_ETCD_EQUAL,
		.key                 = revkey,
		.key_len             = strlen(revkey),
		.number              = e->rev_mod };
	/* On a lost race, the counter as it is: the follower catches up to it. */
	dsi_etcd_op look = { .type = DSI_ETCD_OP_RANGE, .key = revkey, .key_len = strlen(revkey) };
	dsi_etcd_txn_req  tq = { .cmps = &cmp,
		 .n_cmps               = 1,
		 .success              = e->ops,
		 .n_success            = e->n_ops,
		 .failure              = &look,
		 .n_failure            = 1 };
	dsi_etcd_txn_resp tr = { 0 };
	rv                   = dsi_etcd_txn(e->etcd, &tq, &tr, &err);
	int64_t h            = 0;
	if (rv == 0 && tr.succeeded) {
		h = tr.revision;
	} else if (rv == 0) {
		/* Another node moved the counter: catch up, then the writer decides again. */
		int64_t now_at = tr.revision;
		if (tr.n_results == 1 && tr.results[0].n_kvs == 1) {
			now_at = tr.results[0].kvs[0].mod_revision;
		}
		pthread_mutex_lock(&e->mtx);
		e->catch_up = now_at;
		e->n_races++;
		pthread_mutex_unlock(&e->mtx);
		snprintf(e->err, sizeof(e->err), "another node wrote first");
		rv = DSC_ESTATE;
	} else if (rv == DSC_ETIMEDOUT || rv == DSC_ETRANSPORT) {
		int rb = read_back(e, seqkey, seq, &h);
		if (rb == 0) {
			rv = 0;
		} else {
			snprintf(e->err, sizeof(e->err),
			    "etcd did not confirm the write (%.300s)%s; it may still be applied",
			    err.message, rb == DSC_ESTATE ? "" : ", nor answer when asked again");
			rv = DSC_EUNAVAILABLE;
		}
	} else {
		snprintf(e->err, sizeof(e->err), "%s", err.message);
		rv = DSC_EUNAVAILABLE;
	}
	if (rv == 0) {
		e->rev_mod = h; /* the writer applies the batch next, under gate */
	}
	dsi_etcd_txn_resp_free(&tr);
	txn_clear(e);
	return rv;
}

static void
eb_rollback(dsi_backend *b)
{
	txn_clear(eb_of(b));
}

static const char *
eb_error(const dsi_backend *b)
{
	return ceb_of(b)->err;
}

static const char *
eb_describe(const dsi_backend *b)
{
	return ceb_of(b)->label;
}

static uint64_t
eb_revision(const dsi_backend *b)
{
	const etcd_backend *e = ceb_of(b);
	return e->reserved != 0 ? e->reserved
	                        : (e->registry != NULL ? dsi_registry_revision(e->registry) : 0);
}

static int
eb_capability(dsi_backend *b, dsi_backend_cap cap, void **out)
{
	(void) b;
	(void) out;
	return cap == DSI_BACKEND_CAP_COUNTER ? 0 : DSC_ENOTSUP;
}

static void
eb_hold(dsi_backend *b)
{
	pthread_mutex_lock(&eb_of(b)->gate);
}

/* Releases the batch; after a lost race, waits until the follower has caught up. */
static void
eb_unhold(dsi_backend *b)
{
	etcd_backend *e = eb_of(b);
	pthread_mutex_unlock(&e->gate);
	pthread_mutex_lock(&e->mtx);
	int64_t deadline = dsi_monotonic_ms() + CATCH_UP_MS;
	while (e->catch_up > e->applied && !e->stop && dsi_monotonic_ms() < deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&e->cv, &e->mtx, &ts);
	}
	e->catch_up = 0;
	pthread_mutex_unlock(&e->mtx);
}

static size_t
eb_max_batch(const dsi_backend *b)
{
	(void) b;
	return DSI_ETCD_BATCH;
}

static void
eb_close(dsi_backend *b)
{
	etcd_backend *e = eb_of(b);
	pthread_mutex_lock(&e->mtx);
	e->stop = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mtx);
	if (e->following) {
		pthread_join(e->thread, NULL);
	}
	txn_clear(e);
	dsi_etcd_close(e->etcd);
	dsi_etcd_close(e->fetcd);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mtx);
	pthread_mutex_destroy(&e->gate);
	free(e->ops);
	free(e->owned);
	free(e->jtext);
	free(e->endpoints);
	free(e->prefix);
	free(e->node);
	free(e->label);
	free(e);
}

static const dsi_backend_ops etcd_ops = {
	.load         = eb_load,
	.begin        = eb_begin,
	.write        = eb_write,
	.set_revision = eb_set_revision,
	.commit       = eb_commit,
	.rollback     = eb_rollback,
	.error        = eb_error,
	.describe     = eb_describe,
	.revision     = eb_revision,
	.capability   = eb_capability,
	.close        = eb_close,
	.hold         = eb_hold,
	.unhold       = eb_unhold,
	.max_batch    = eb_max_batch,
};

int
dsi_etcd_backend_open(
    dsi_backend **out, const dsi_etcd_backend_options *o, char *why, size_t why_len)
{
	etcd_backend *e = calloc(1, sizeof(*e));
	size_t        ll;

	if (e == NULL) {
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	e->base.ops   = &etcd_ops;
	e->log        = o->log;
	e->timeout_ms = o->timeout_ms;
	/* Sequence numbers stay unique across restarts of the node. */
	e->seq = (uint64_t) dsi_wall_ms() * 1000;
	pthread_mutex_init(&e->gate, NULL);
	pthread_mutex_init(&e->mtx, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->endpoints = strdup(o->endpoints);
	e->prefix    = strdup(o->prefix);
	e->node      = strdup(o->node);
	ll           = strlen(o->endpoints) + strlen(o->prefix) + 32;
	if (e->endpoints == NULL || e->prefix == NULL || e->node == NULL
	    || (e->label = malloc(ll)) == NULL) {
		eb_close(&e->base);
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	snprintf(e->label, ll, "etcd %s prefix %s", o->endpoints, o->prefix);
	*out = &e->base;
	return 0;
}

int
dsi_etcd_backend_follow(dsi_backend *b, const dsi_etcd_applier *a)
{
	etcd_backend *e = eb_of(b);
	dsc_error     err;
	if (dsi_etcd_open(&e->fetcd, e->endpoints, e->timeout_ms, &err) != 0) {
		return DSC_ENOMEM;
	}
	e->applier = *a;
	if (pthread_create(&e->thread, NULL, dsi_etcdb_follow_main, e) != 0) {
		return DSC_ENOMEM;
	}
	e->following = true;
	return 0;
}

void
dsi_etcd_backend_stats_get(dsi_backend *b, dsi_etcd_backend_stats *out)
{
	etcd_backend *e = eb_of(b);
	pthread_mutex_lock(&e->mtx);
	out->applied  = e->n_applied;
	out->resyncs  = e->n_resyncs;
	out->races    = e->n_races;
	out->etcd_rev = e->applied;
	pthread_mutex_unlock(&e->mtx);
}
