/*
 * dsc_instance: deep copies out of the wire type and between copies, and
 * their release. The one implementation client.c, watch.c and view.c share.
 */
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"

void
dsi_inst_clear(dsc_instance *x)
{
	free(x->service);
	free(x->endpoint);
	free(x->health_path);
	free(x->last_error);
	for (size_t i = 0; i < x->n_metadata; i++) {
		free((char *) x->metadata[i].key);
		free((char *) x->metadata[i].value);
	}
	free(x->metadata);
	memset(x, 0, sizeof(*x));
}

/* strdup of s (NULL as ""); clears *ok when out of memory. */
static char *
dup_str(const char *s, bool *ok)
{
	char *d = strdup(s != NULL ? s : "");
	*ok     = *ok && d != NULL;
	return d;
}

int
dsi_inst_from_pb(dsc_instance *dst, const Discovery__V1__Instance *src)
{
	static const Discovery__V1__Instance empty = DISCOVERY__V1__INSTANCE__INIT;
	bool                                 ok    = true;

	if (src == NULL) {
		src = &empty;
	}
	memset(dst, 0, sizeof(*dst));
	dst->service          = dup_str(src->service, &ok);
	dst->endpoint         = dup_str(src->endpoint, &ok);
	dst->health_path      = dup_str(src->health_path, &ok);
	dst->last_error       = dup_str(src->last_error, &ok);
	dst->health           = (dsc_health) src->health;
	dst->ttl_ms           = src->ttl_ms;
	dst->weight           = src->weight;
	dst->registered_at_ms = src->registered_at_ms;
	dst->last_check_ms    = src->last_check_ms;
	if (ok && src->n_metadata > 0) {
		dst->metadata = calloc(src->n_metadata, sizeof(*dst->metadata));
		ok            = dst->metadata != NULL;
		for (size_t i = 0; ok && i < src->n_metadata; i++) {
			dst->metadata[i].key   = dup_str(src->metadata[i]->key, &ok);
			dst->metadata[i].value = dup_str(src->metadata[i]->value, &ok);
			dst->n_metadata        = i + 1;
		}
	}
	if (!ok) {
		dsi_inst_clear(dst);
		return DSC_ENOMEM;
	}
	return 0;
}

int
dsi_inst_copy(dsc_instance *dst, const dsc_instance *src)
{
	bool ok = true;

	*dst             = *src; /* the scalars */
	dst->metadata    = NULL;
	dst->n_metadata  = 0;
	dst->service     = dup_str(src->service, &ok);
	dst->endpoint    = dup_str(src->endpoint, &ok);
	dst->health_path = dup_str(src->health_path, &ok);
	dst->last_error  = dup_str(src->last_error, &ok);
	if (ok && src->n_metadata > 0) {
		dst->metadata = calloc(src->n_metadata, sizeof(*dst->metadata));
		ok            = dst->metadata != NULL;
		for (size_t i = 0; ok && i < src->n_metadata; i++) {
			dst->metadata[i].key   = dup_str(src->metadata[i].key, &ok);
			dst->metadata[i].value = dup_str(src->metadata[i].value, &ok);
			dst->n_metadata        = i + 1;
		}
	}
	if (!ok) {
		dsi_inst_clear(dst);
		return DSC_ENOMEM;
	}
	return 0;
}

void
dsc_instance_free(dsc_instance *inst)
{
	if (inst != NULL) {
		dsi_inst_clear(inst);
		free(inst);
	}
}

void
dsc_instance_list_free(dsc_instance_list *list)
{
	if (list != NULL) {
		for (size_t i = 0; i < list->count; i++) {
			dsi_inst_clear(&list->items[i]);
		}
		free(list->items);
		free(list);
	}
}
