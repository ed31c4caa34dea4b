/* Writer-preferring read-write locks (see rwlock.h). */
#define _GNU_SOURCE /* glibc's pthread_rwlockattr_setkind_np; this file only */
#include "common/rwlock.h"

#include <discovery/discovery.h>

int
dsi_rwlock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int                  rv;

	if (pthread_rwlockattr_init(&attr) != 0) {
		return DSC_ENOMEM;
	}
#ifdef __GLIBC__
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	rv = pthread_rwlock_init(lock, &attr) == 0 ? 0 : DSC_ENOMEM;
	pthread_rwlockattr_destroy(&attr);
	return rv;
}
