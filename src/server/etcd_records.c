/* The etcd backend's records: keys, the journal, stored instances and health values. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/etcd_backend_impl.h"

/* ---- keys ---- */

static const char hexdigits[] = "0123456789abcdef";

size_t
dsi_etcdb_hex(char *out, const char *s)
{
	size_t n = 0;
	for (; *s != 0; s++) {
		out[n++] = hexdigits[(unsigned char) *s >> 4];
		out[n++] = hexdigits[(unsigned char) *s & 15];
	}
	return n;
}

/* Hex keeps the endpoints' byte order, so a service's keys sort as its instances do. */
char *
dsi_etcdb_family_key(
    const etcd_backend *e, const char *family, const char *service, const char *endpoint)
{
	size_t ep  = endpoint != NULL ? strlen(endpoint) : 0;
	size_t len = strlen(e->prefix) + strlen(family) + strlen(service) + 2 * ep + 4;
	char  *k   = malloc(len);
	if (k == NULL) {
		return NULL;
	}
	size_t n = (size_t) snprintf(k, len, "%s%s/%s/", e->prefix, family, service);
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

int
dsi_etcdb_unhex(const char *s, size_t n, char **out)
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

int
dsi_etcdb_health_parse(
    const uint8_t *data, size_t len, dsc_health *state, char *reason, size_t reason_len)
{
	/* "STATE NODE\nREASON": NODE is the member that wrote it, for audits. */
	const uint8_t *nl = len > 0 ? memchr(data, '\n', len) : NULL;
	if (nl == NULL || len < 2 || (data[1] != ' ' && data[1] != '\n')
	    || data[0] < '0' + DSC_HEALTH_UNKNOWN || data[0] > '0' + DSC_HEALTH_UNHEALTHY) {
		return DSC_EPROTO;
	}
	*state     = (dsc_health) (data[0] - '0');
	size_t off = (size_t) (nl - data) + 1;
	snprintf(reason, reason_len, "%.*s", (int) (len - off), (const char *) data + off);
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
		} else if (je->kind != J_REGISTER && je->kind != J_DEREGISTER
		    && je->kind != J_HEALTH) {
			goto bad;
		} else if (sp == NULL
		    || dsi_etcdb_unhex(sp + 1, (size_t) (nl - sp - 1), &je->endpoint) != 0) {
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

int
dsi_etcdb_encode(const dsi_registry_op_info *op, uint8_t **out, size_t *len)
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
