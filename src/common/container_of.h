/*
 * From an embedded member back to the struct that holds it: the intrusive
 * containers (hash.h, fifo.h) hand out their nodes, the caller maps them.
 */
#ifndef DSI_CONTAINER_OF_H
#define DSI_CONTAINER_OF_H

#include <stddef.h>

/* ptr points at member of a type; NULL is not allowed (test first). */
#define DSI_CONTAINER_OF(ptr, type, member) \
	((type *) (void *) ((char *) (ptr) -offsetof(type, member)))

#endif
