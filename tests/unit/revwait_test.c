/*
 * The min_revision waiting room: reached at once, woken by notify, ended by
 * its timer or by stop, the slot cap, and a wait of 0. The registry is a
 * real one whose revision the tests move with dsi_registry_set_revision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "common/error.h"
#include "server/revwait.h"

/* One parked request: what its callback was told. */
typedef struct waiter {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            called;
	int             rv;
	char            msg[200];
} waiter;

static void
waiter_init(waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void
on_end(void *arg, int rv)
{
	waiter *w = arg;
	pthread_mutex_lock(&w->mtx);
	w->called = true;
	w->rv     = rv;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

/* Its callback's rv, once it has run (no bound: ctest's timeout is the liveness bound). */
static int
waiter_wait(waiter *w)
{
	pthread_mutex_lock(&w->mtx);
	while (!w->called) {
		pthread_cond_wait(&w->cv, &w->mtx);
	}
	pthread_mutex_unlock(&w->mtx);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
	return w->rv;
}

static dsi_registry *
registry_at(uint64_t rev)
{
	dsi_registry *r = NULL;
	assert_int_equal(dsi_registry_create(&r, NULL), 0);
	dsi_registry_set_revision(r, rev);
	return r;
}

static void
test_reached_and_no_wait(void **state)
{
	dsi_registry *r = registry_at(5);
	dsi_revwait  *w = NULL;
	char          msg[200];
	int           rv = -1;
	(void) state;

	assert_int_equal(dsi_revwait_create(&w, 0, 2), 0);
	assert_false(dsi_revwait_park(w, r, 5, &rv, msg, sizeof(msg), on_end, NULL));
	assert_int_equal(rv, 0);
	/* A wait of 0: behind is answered at once. */
	assert_false(dsi_revwait_park(w, r, 6, &rv, msg, sizeof(msg), on_end, NULL));
	assert_int_equal(rv, DSC_EUNAVAILABLE);
	assert_string_equal(msg,
	    "this server is at revision 5, behind the requested 6; retry, or ask another server");
	/* No waiting room at all: the same. */
	rv = 0;
	assert_false(dsi_revwait_park(NULL, r, 6, &rv, msg, sizeof(msg), on_end, NULL));
	assert_int_equal(rv, DSC_EUNAVAILABLE);
	dsi_revwait_destroy(w);
	dsi_registry_destroy(r);
}

/* Woken by the revision it waits for, not by one below it; the others time out. */
static void
test_notify_and_timer(void **state)
{
	dsi_registry *r = registry_at(1);
	dsi_revwait  *w = NULL;
	waiter        near, far;
	int           rv;
	(void) state;

	waiter_init(&near);
	waiter_init(&far);
	assert_int_equal(dsi_revwait_create(&w, 200, 4), 0);
	assert_true(dsi_revwait_park(w, r, 3, &rv, near.msg, sizeof(near.msg), on_end, &near));
	assert_true(dsi_revwait_park(w, r, 9, &rv, far.msg, sizeof(far.msg), on_end, &far));
	assert_int_equal(dsi_revwait_count(w), 2);
	dsi_registry_set_revision(r, 3);
	dsi_revwait_notify(w, 2); /* not yet */
	dsi_revwait_notify(w, 3);
	assert_int_equal(waiter_wait(&near), 0);
	assert_int_equal(waiter_wait(&far), DSC_EUNAVAILABLE); /* its 200 ms ran out */
	assert_string_equal(far.msg,
	    "this server is at revision 3, behind the requested 9; retry, or ask another server");
	assert_int_equal(dsi_revwait_count(w), 0);
	dsi_revwait_destroy(w);
	dsi_registry_destroy(r);
}

/* Every slot taken: the next request is answered at once; a freed slot is used again. */
static void
test_cap_and_stop(void **state)
{
	dsi_registry *r = registry_at(0);
	dsi_revwait  *w = NULL;
	waiter        a, b, c;
	char          msg[200];
	int           rv;
	(void) state;

	waiter_init(&a);
	waiter_init(&b);
	waiter_init(&c);
	assert_int_equal(dsi_revwait_create(&w, 60000, 2), 0);
	assert_true(dsi_revwait_park(w, r, 1, &rv, a.msg, sizeof(a.msg), on_end, &a));
	assert_true(dsi_revwait_park(w, r, 2, &rv, b.msg, sizeof(b.msg), on_end, &b));
	assert_false(dsi_revwait_park(w, r, 1, &rv, msg, sizeof(msg), on_end, NULL));
	assert_int_equal(rv, DSC_EUNAVAILABLE);
	dsi_revwait_notify(w, 1);
	assert_int_equal(waiter_wait(&a), 0);
	assert_true(dsi_revwait_park(w, r, 7, &rv, c.msg, sizeof(c.msg), on_end, &c));
	/* Stop answers those still waiting, and refuses new ones. */
	dsi_revwait_stop(w);
	assert_int_equal(waiter_wait(&b), DSC_EUNAVAILABLE);
	assert_int_equal(waiter_wait(&c), DSC_EUNAVAILABLE);
	assert_false(dsi_revwait_park(w, r, 9, &rv, msg, sizeof(msg), on_end, NULL));
	assert_int_equal(rv, DSC_EUNAVAILABLE);
	dsi_revwait_destroy(w);
	dsi_registry_destroy(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reached_and_no_wait),
		cmocka_unit_test(test_notify_and_timer),
		cmocka_unit_test(test_cap_and_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
