/*
 * The rwlock helper: a writer gets the lock while a continuous stream of
 * readers, overlapping one another, keeps it busy. Liveness bounds only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "common/rwlock.h"
#include "common/timeutil.h"
#include "support/testutil.h"

#define READERS 4

/* A stream of readers, each holding the lock a little while the others overlap it. */
typedef struct stream {
	pthread_rwlock_t lock;
	_Atomic bool     stop;
	_Atomic int      started;  /* readers that have held the lock once */
	_Atomic uint64_t sections; /* read sections completed, for the report */
} stream;

static void *
reader_main(void *arg)
{
	stream *s     = arg;
	bool    first = true;
	while (!atomic_load(&s->stop)) {
		pthread_rwlock_rdlock(&s->lock);
		if (first) {
			atomic_fetch_add(&s->started, 1);
			first = false;
		}
		/* Long enough that another reader always arrives while this one holds it. */
		struct timespec hold = { 0, 200 * 1000 };
		nanosleep(&hold, NULL);
		pthread_rwlock_unlock(&s->lock);
		atomic_fetch_add(&s->sections, 1);
	}
	return NULL;
}

/* Still a read-write lock: a reader keeps writers out, a writer keeps everyone out. */
static void
test_exclusion(void **state)
{
	pthread_rwlock_t lock;
	(void) state;
	assert_ok(dsi_rwlock_init(&lock));
	assert_int_equal(pthread_rwlock_rdlock(&lock), 0);
	assert_int_equal(pthread_rwlock_trywrlock(&lock), EBUSY);
	pthread_rwlock_unlock(&lock);
	assert_int_equal(pthread_rwlock_trywrlock(&lock), 0);
	assert_int_equal(pthread_rwlock_tryrdlock(&lock), EBUSY);
	pthread_rwlock_unlock(&lock);
	pthread_rwlock_destroy(&lock);
}

/*
 * The registry's case: resolves keep the read lock held by someone at every
 * moment, and a register must still get in. With a reader-preferring lock
 * the writer waits as long as the stream lasts; here it lasts until the
 * writer got the lock, or the liveness bound passed.
 */
static void
test_writer_not_starved(void **state)
{
	static stream s;
	pthread_t     readers[READERS];
	(void) state;

	assert_ok(dsi_rwlock_init(&s.lock));
	atomic_init(&s.stop, false);
	atomic_init(&s.started, 0);
	atomic_init(&s.sections, 0);
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &s), 0);
	}
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (atomic_load(&s.started) < READERS && tu_now_ms() < deadline) {
		tu_sleep_ms(1);
	}
	assert_int_equal(atomic_load(&s.started), READERS);

	struct timespec until;
	dsi_realtime_after(&until, TU_LIVENESS_MS);
	int  rv  = pthread_rwlock_timedwrlock(&s.lock, &until);
	bool got = rv == 0;
	atomic_store(&s.stop, true); /* the stream ends either way, so the joins return */
	if (got) {
		pthread_rwlock_unlock(&s.lock);
	}
	for (int i = 0; i < READERS; i++) {
		pthread_join(readers[i], NULL);
	}
	pthread_rwlock_destroy(&s.lock);
	if (!got) {
		fail_msg("the writer did not get the lock within %d ms of a reader stream (%llu "
		         "read sections)",
		    TU_LIVENESS_MS, (unsigned long long) atomic_load(&s.sections));
	}
}

/* A writer waiting for the lock. */
static void *
writer_main(void *arg)
{
	pthread_rwlock_t *lock = arg;
	pthread_rwlock_wrlock(lock);
	pthread_rwlock_unlock(lock);
	return NULL;
}

/*
 * The preference itself: once a writer waits, a new reader is held back
 * (tryrdlock fails) although only readers hold the lock. Without writer
 * preference every tryrdlock succeeds and the loop runs into the bound.
 */
static void
test_waiting_writer_holds_back_readers(void **state)
{
	pthread_rwlock_t lock;
	pthread_t        writer;
	bool             held_back = false;
	(void) state;

#ifndef __GLIBC__
	skip(); /* the platform's default kind: no preference is promised */
#endif
	assert_ok(dsi_rwlock_init(&lock));
	assert_int_equal(pthread_rwlock_rdlock(&lock), 0);
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &lock), 0);
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (!held_back && tu_now_ms() < deadline) {
		if (pthread_rwlock_tryrdlock(&lock) == 0) {
			pthread_rwlock_unlock(&lock); /* the writer is not queued yet */
			tu_sleep_ms(1);
		} else {
			held_back = true;
		}
	}
	pthread_rwlock_unlock(&lock); /* the writer goes now */
	pthread_join(writer, NULL);
	pthread_rwlock_destroy(&lock);
	if (!held_back) {
		fail_msg("a reader got in past a waiting writer for %d ms", TU_LIVENESS_MS);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exclusion),
		cmocka_unit_test(test_writer_not_starved),
		cmocka_unit_test(test_waiting_writer_holds_back_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
