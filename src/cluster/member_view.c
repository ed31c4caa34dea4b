/*
 * Copies of the membership for callers (member.h): views, the owner of an
 * instance in a view, and the compares that fence a health write.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/member_impl.h"
#include "cluster/shard.h"
#include "common/timeutil.h"

void
dsi_member_view_free(dsi_membership *v)
{
	for (size_t i = 0; i < v->n_members; i++) {
		free(v->members[i].name);
		free(v->members[i].info);
	}
	free(v->members);
	free(v->self);
	free(v->self_key);
	free(v->members_range);
	memset(v, 0, sizeof(*v));
}

int
dsi_member_view(dsi_member *m, dsi_membership *out)
{
	dsi_membership v = { 0 };
	bool           ok;
	pthread_mutex_lock(&m->lock);
	v.self_create_revision = dsi_monotonic_ms() < m->alive_until ? m->self_create : 0;
	v.members_revision     = m->members_rev;
	v.revision             = m->list_rev;
	v.self                 = strdup(m->node);
	v.self_key             = strdup(m->key);
	v.members_range        = strdup(m->range);
	v.members              = calloc(m->n_list > 0 ? m->n_list : 1, sizeof(*v.members));
	ok = v.self != NULL && v.self_key != NULL && v.members_range != NULL && v.members != NULL;
	for (size_t i = 0; ok && i < m->n_list; i++) {
		dsi_member_info *d = &v.members[v.n_members++];
		d->create_revision = m->list[i].create_revision;
		d->name            = strdup(m->list[i].name);
		d->info            = m->list[i].info != NULL ? strdup(m->list[i].info) : NULL;
		ok = d->name != NULL && (m->list[i].info == NULL || d->info != NULL);
	}
	pthread_mutex_unlock(&m->lock);
	if (!ok) {
		dsi_member_view_free(&v);
		return DSC_ENOMEM;
	}
	*out = v;
	return 0;
}

const char *
dsi_member_owner(const dsi_membership *v, const char *service, const char *endpoint)
{
	const char *best   = NULL;
	uint64_t    best_w = 0;
	for (size_t i = 0; i < v->n_members; i++) {
		const char *name = v->members[i].name;
		uint64_t    w    = dsi_shard_weight(name, service, endpoint);
		/* The same rule as dsi_shard_owner, over the view's entries. */
		if (best == NULL || w > best_w || (w == best_w && strcmp(name, best) < 0)) {
			best   = name;
			best_w = w;
		}
	}
	return best;
}

size_t
dsi_member_fence(const dsi_membership *v, dsi_etcd_cmp cmps[2])
{
	if (v->self_create_revision == 0) {
		return 0;
	}
	cmps[0] = (dsi_etcd_cmp) { .target = DSI_ETCD_CREATE,
		.result                    = DSI_ETCD_EQUAL,
		.key                       = v->self_key,
		.key_len                   = strlen(v->self_key),
		.number                    = v->self_create_revision };
	cmps[1] = (dsi_etcd_cmp) { .target = DSI_ETCD_MOD,
		.result                    = DSI_ETCD_LESS,
		.key                       = v->members_range,
		.key_len                   = strlen(v->members_range),
		.number                    = v->members_revision + 1,
		.prefix                    = true };
	return 2;
}
