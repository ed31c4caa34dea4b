/*
 * The one kind of read-write lock in the tree, for the registry and for
 * libdiscovery's views: writer-preferring, so a steady stream of readers
 * (resolves) cannot starve a writer (a register, a view update).
 */
#ifndef DSI_RWLOCK_H
#define DSI_RWLOCK_H

#include <pthread.h>

/*
 * Initializes lock for pthread_rwlock_rdlock / wrlock / unlock / destroy.
 * With glibc a writer that waits holds back readers that come after it
 * (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP); elsewhere the platform's
 * default kind. The price of the preference: a thread must never take the
 * read lock it already holds, since a writer queued between the two takes
 * deadlocks it. Returns 0, or DSC_ENOMEM with lock left uninitialized.
 */
int dsi_rwlock_init(pthread_rwlock_t *lock);

#endif
