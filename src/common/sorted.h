/* Binary search over arrays kept sorted by a string key. */
#ifndef DSI_SORTED_H
#define DSI_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Searches n elements of size bytes at base, sorted by strcmp of
 * key_of(element), for key. Returns its index (*found true) or the index
 * where it would be inserted (*found false).
 */
size_t dsi_sorted_search(const void *base, size_t n, size_t size, const char *key,
    const char *(*key_of)(const void *elem), bool *found);

#endif
