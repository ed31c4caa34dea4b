/* One binary search for every sorted array in the tree. */
#include "common/sorted.h"

#include <string.h>

size_t
dsi_sorted_search(const void *base, size_t n, size_t size, const char *key,
    const char *(*key_of)(const void *elem), bool *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    c   = strcmp(key_of((const char *) base + mid * size), key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}
