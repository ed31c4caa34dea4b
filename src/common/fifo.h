/*
 * An intrusive singly linked FIFO with head and tail. The caller embeds a
 * dsi_fifo_node in its struct and maps nodes back with DSI_CONTAINER_OF;
 * the queue allocates nothing and owns nothing, so no call can fail.
 * Not thread-safe: the owner's lock guards it.
 */
#ifndef DSI_FIFO_H
#define DSI_FIFO_H

#include <stdbool.h>
#include <stddef.h>

#include "common/container_of.h"

/* The link a queued struct embeds; a taken chain ends with next == NULL. */
typedef struct dsi_fifo_node {
	struct dsi_fifo_node *next;
} dsi_fifo_node;

/* The queue: an empty one is all zeroes (head and tail NULL). */
typedef struct dsi_fifo {
	dsi_fifo_node *head;
	dsi_fifo_node *tail;
} dsi_fifo;

static inline void
dsi_fifo_init(dsi_fifo *q)
{
	q->head = q->tail = NULL;
}

static inline bool
dsi_fifo_empty(const dsi_fifo *q)
{
	return q->head == NULL;
}

/* Appends n (not in any queue). */
static inline void
dsi_fifo_push(dsi_fifo *q, dsi_fifo_node *n)
{
	n->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = n;
	} else {
		q->head = n;
	}
	q->tail = n;
}

/*
 * Puts the NULL-terminated chain starting at first (NULL: nothing) back at
 * the head, in its order: a consumer requeues what it took and could not
 * handle. Walks the chain to find its last node.
 */
static inline void
dsi_fifo_push_front(dsi_fifo *q, dsi_fifo_node *first)
{
	if (first == NULL) {
		return;
	}
	dsi_fifo_node *last = first;
	while (last->next != NULL) {
		last = last->next;
	}
	last->next = q->head;
	if (q->head == NULL) {
		q->tail = last;
	}
	q->head = first;
}

/* Removes and returns the first node, or NULL when empty. */
static inline dsi_fifo_node *
dsi_fifo_pop(dsi_fifo *q)
{
	dsi_fifo_node *n = q->head;
	if (n != NULL) {
		q->head = n->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		n->next = NULL;
	}
	return n;
}

/* Empties the queue and returns its whole chain in order (NULL: it was empty). */
static inline dsi_fifo_node *
dsi_fifo_take(dsi_fifo *q)
{
	dsi_fifo_node *chain = q->head;
	q->head = q->tail = NULL;
	return chain;
}

#endif
