/* The checker's inbox: a locked dsi_fifo any thread appends to. */
#include "server/inbox.h"

#include <stdlib.h>
#include <string.h>

static dsi_inbox_op *
op_of(dsi_fifo_node *n)
{
	return n != NULL ? DSI_CONTAINER_OF(n, dsi_inbox_op, link) : NULL;
}

void
dsi_inbox_init(dsi_inbox *in)
{
	pthread_mutex_init(&in->mtx, NULL);
	dsi_fifo_init(&in->ops);
	in->stop = false;
}

void
dsi_inbox_destroy(dsi_inbox *in)
{
	for (dsi_fifo_node *n; (n = dsi_fifo_pop(&in->ops)) != NULL;) {
		dsi_inbox_op_free(DSI_CONTAINER_OF(n, dsi_inbox_op, link));
	}
	pthread_mutex_destroy(&in->mtx);
}

void
dsi_inbox_op_free(dsi_inbox_op *o)
{
	free(o->service);
	free(o->endpoint);
	free(o->health_path);
	free(o);
}

bool
dsi_inbox_post(dsi_inbox *in, const dsi_change *ch)
{
	bool remove = ch->type == DISCOVERY__V1__EVENT_TYPE__EVENT_DEREGISTERED;
	if ((ch->type != DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED
	        && ch->type != DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED && !remove)
	    || ch->instance == NULL) {
		return false; /* health changes come from the checker itself, or from heartbeats */
	}
	dsi_inbox_op *o = calloc(1, sizeof(*o));
	if (o == NULL || (o->service = strdup(ch->service)) == NULL
	    || (o->endpoint = strdup(ch->instance->endpoint)) == NULL
	    || (o->health_path = strdup(ch->instance->health_path)) == NULL) {
		if (o != NULL) {
			dsi_inbox_op_free(o);
		}
		return false;
	}
	o->remove = remove;
	o->ttl_ms = ch->instance->ttl_ms;
	o->health = (dsc_health) ch->instance->health;
	pthread_mutex_lock(&in->mtx);
	bool wake = dsi_fifo_empty(&in->ops);
	dsi_fifo_push(&in->ops, &o->link);
	pthread_mutex_unlock(&in->mtx);
	return wake;
}

void
dsi_inbox_stop(dsi_inbox *in)
{
	pthread_mutex_lock(&in->mtx);
	in->stop = true;
	pthread_mutex_unlock(&in->mtx);
}

dsi_inbox_op *
dsi_inbox_take(dsi_inbox *in, bool *stop)
{
	pthread_mutex_lock(&in->mtx);
	dsi_fifo_node *ops = dsi_fifo_take(&in->ops);
	*stop              = in->stop;
	pthread_mutex_unlock(&in->mtx);
	return op_of(ops);
}

dsi_inbox_op *
dsi_inbox_op_next(const dsi_inbox_op *o)
{
	return op_of(o->link.next);
}
