/*
 * The health checker's inbox: registry changes waiting for its thread, and
 * its stop flag. Any thread posts; the checker's thread takes everything at
 * once, so only the first post after a take needs to wake it.
 */
#ifndef DSI_INBOX_H
#define DSI_INBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/fifo.h"
#include "server/registry.h"

/* One change the checker applies: an instance to check, or to forget. */
typedef struct dsi_inbox_op {
	dsi_fifo_node link; /* in the inbox, then in the chain dsi_inbox_take returns */
	bool          remove;
	char         *service;
	char         *endpoint;
	char         *health_path;
	uint32_t      ttl_ms;
	dsc_health    health;
} dsi_inbox_op;

typedef struct dsi_inbox {
	pthread_mutex_t mtx; /* guards all below */
	dsi_fifo        ops; /* of dsi_inbox_op, by link */
	bool            stop;
} dsi_inbox;

void dsi_inbox_init(dsi_inbox *in);

/* Frees every op still waiting. */
void dsi_inbox_destroy(dsi_inbox *in);

/*
 * Queues what the checker must learn from ch (registrations, updates and
 * removals; other changes are ignored, and an op that cannot be allocated
 * is dropped). Returns true when the owner must be woken.
 */
bool dsi_inbox_post(dsi_inbox *in, const dsi_change *ch);

/* Asks the owner to stop; it must then be woken. */
void dsi_inbox_stop(dsi_inbox *in);

/* Takes every waiting op, oldest first (the caller frees each), and whether to stop. */
dsi_inbox_op *dsi_inbox_take(dsi_inbox *in, bool *stop);

/* The op after o in what dsi_inbox_take returned, or NULL; read it before freeing o. */
dsi_inbox_op *dsi_inbox_op_next(const dsi_inbox_op *o);

void dsi_inbox_op_free(dsi_inbox_op *o);

#endif
