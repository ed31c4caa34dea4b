/*
 * Request.min_revision (read your own writes on another node) against real
 * discoveryd processes on loopback: a request at or below the registry's
 * revision is answered at once; one ahead waits (--min-revision-wait) for a
 * write to bring the revision, or is answered UNAVAILABLE; at most half the
 * REP pool waits; libdiscovery's read_own_writes carries the revision of
 * its writes and fails over past a server behind; discoveryctl's
 * --min-revision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/testutil.h"

#define WORKERS "4" /* so at most 2 requests wait */
#define CAP     2
#define EXTRA   3 /* waiting requests past the cap */

/* A client on url (one or a list) with a liveness timeout. */
static dsc_client *
client_on(const char *url)
{
	dsc_client_options o;
	dsc_client        *c = NULL;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	assert_int_equal(dsc_client_open(&c, url, &o), 0);
	return c;
}

/*
 * Registers service at endpoint; returns the revision it was answered at.
 * A TTL instance that no test outlives: no health check moves the revision.
 */
static uint64_t
reg(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_registration r = { .service = service, .endpoint = endpoint, .ttl_ms = 600000 };
	dsc_error        err;
	int              rv = dsc_register(c, &r, NULL, &err);
	if (rv != 0) {
		fail_msg("register %s %s: %s", service, endpoint, err.message);
	}
	return dsc_client_revision(c);
}

static uint64_t
revision_of(dsc_client *c)
{
	dsc_server_status *st = NULL;
	assert_int_equal(dsc_status(c, &st, NULL), 0);
	uint64_t rev = st->revision;
	dsc_server_status_free(st);
	return rev;
}

/* ---- one daemon that waits long: at once, a write within the wait, the cap ---- */

static int
long_wait_setup(void **state)
{
	td_daemon *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	const char *args[] = { "--workers", WORKERS, "--min-revision-wait", "60", NULL };
	if (td_daemon_start(d, args) != 0) {
		free(d);
		fail_msg("discoveryd did not start");
	}
	*state = d;
	return 0;
}

static int
daemon_teardown(void **state)
{
	td_daemon *d = *state;
	assert_int_equal(td_daemon_stop(d), 0);
	free(d);
	return 0;
}

/* At or below the current revision (and 0): answered as without it. */
static void
test_at_or_below(void **state)
{
	td_daemon  *d       = *state;
	dsc_client *c       = client_on(d->url);
	uint64_t    cur     = reg(c, "minrev-now", "http://127.0.0.1:9");
	uint64_t    wants[] = { cur, 1, 0 };

	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
		dsc_instance *x = NULL;
		dsc_client_set_min_revision(c, wants[i]);
		assert_int_equal(dsc_resolve(c, "minrev-now", false, &x, NULL), 0);
		assert_string_equal(x->endpoint, "http://127.0.0.1:9");
		dsc_instance_free(x);
	}
	dsc_client_close(c);
}

/* One call on its own thread and client. */
typedef struct bg_call {
	pthread_t    th;
	const char  *url;
	const char  *service;
	uint64_t     want;
	int          rv;
	dsc_error    err;
	char         endpoint[64];
	uint64_t     revision;
	_Atomic int *done; /* counted when the call returns */
} bg_call;

static void *
bg_resolve(void *arg)
{
	bg_call      *b = arg;
	dsc_client   *c = NULL;
	dsc_instance *x = NULL;

	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	b->rv        = dsc_client_open(&c, b->url, &o);
	if (b->rv == 0) {
		dsc_client_set_min_revision(c, b->want);
		b->rv = dsc_resolve(c, b->service, false, &x, &b->err);
		if (b->rv == 0) {
			snprintf(b->endpoint, sizeof(b->endpoint), "%s", x->endpoint);
			dsc_instance_free(x);
		}
		b->revision = dsc_client_revision(c);
		dsc_client_close(c);
	}
	atomic_fetch_add(b->done, 1);
	return NULL;
}

/* A Resolve one revision ahead, then the Register that brings it: it sees that write. */
static void
test_write_within_wait(void **state)
{
	td_daemon  *d    = *state;
	dsc_client *c    = client_on(d->url);
	_Atomic int done = 0;
	bg_call     b    = { .url = d->url, .service = "minrev-late", .done = &done };

	b.want = revision_of(c) + 1;
	assert_int_equal(pthread_create(&b.th, NULL, bg_resolve, &b), 0);
	tu_sleep_ms(200); /* most likely waiting by now; the outcome is the same if not */
	uint64_t wrote = reg(c, "minrev-late", "http://127.0.0.1:10");
	pthread_join(b.th, NULL);
	if (b.rv != 0) {
		fail_msg("the waiting resolve failed: %s", b.err.message);
	}
	assert_string_equal(b.endpoint, "http://127.0.0.1:10");
	assert_true(b.revision >= wrote);
	dsc_client_close(c);
}

/*
 * More waiting requests than the cap (half of --workers): the extra ones
 * are answered UNAVAILABLE at once while the others wait, a plain Resolve
 * from another client is still served, and the write that brings the
 * revision answers the waiting ones.
 */
static void
test_cap(void **state)
{
	td_daemon  *d    = *state;
	dsc_client *c    = client_on(d->url);
	_Atomic int done = 0;
	bg_call     b[CAP + EXTRA];
	uint64_t    cur = reg(c, "minrev-cap", "http://127.0.0.1:11");

	for (size_t i = 0; i < CAP + EXTRA; i++) {
		b[i] = (bg_call) {
			.url = d->url, .service = "minrev-cap", .want = cur + 1, .done = &done
		};
		assert_int_equal(pthread_create(&b[i].th, NULL, bg_resolve, &b[i]), 0);
	}
	/* The extra ones come back at once; the wait is 60 s, so the rest are waiting. */
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (atomic_load(&done) < EXTRA && tu_now_ms() < deadline) {
		tu_sleep_ms(10);
	}
	assert_int_equal(atomic_load(&done), EXTRA);

	/* Others are still served meanwhile. */
	dsc_instance *x = NULL;
	assert_int_equal(dsc_resolve(c, "minrev-cap", false, &x, NULL), 0);
	dsc_instance_free(x);
	assert_int_equal(atomic_load(&done), EXTRA);

	reg(c, "minrev-cap", "http://127.0.0.1:12"); /* cur + 1 */
	size_t ok = 0, behind = 0;
	for (size_t i = 0; i < CAP + EXTRA; i++) {
		pthread_join(b[i].th, NULL);
		if (b[i].rv == 0) {
			ok++;
		} else {
			assert_int_equal(b[i].rv, DSC_EUNAVAILABLE);
			assert_non_null(strstr(b[i].err.message, "behind the requested"));
			assert_int_equal(b[i].revision, cur);
			behind++;
		}
	}
	assert_int_equal(ok, CAP);
	assert_int_equal(behind, EXTRA);
	dsc_client_close(c);
}

/* ---- a short wait: never reached ---- */

static int
short_wait_setup(void **state)
{
	td_daemon *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	const char *args[] = { "--min-revision-wait", "0.2", NULL };
	if (td_daemon_start(d, args) != 0) {
		free(d);
		fail_msg("discoveryd did not start");
	}
	*state = d;
	return 0;
}

/* Every kind of call honours it: UNAVAILABLE, the message, the server's own revision. */
static void
test_never_reached(void **state)
{
	td_daemon  *d   = *state;
	dsc_client *c   = client_on(d->url);
	uint64_t    cur = reg(c, "minrev-never", "http://127.0.0.1:13");
	char        want[160];
	dsc_error   err;

	snprintf(want, sizeof(want),
	    "this server is at revision %" PRIu64 ", behind the requested %" PRIu64
	    "; retry, or ask another server",
	    cur, cur + 100);
	dsc_client_set_min_revision(c, cur + 100);
	int rvs[] = {
		dsc_resolve(c, "minrev-never", false, NULL, &err),
		dsc_get_all(c, NULL, NULL, &err),
		dsc_is_healthy(c, "minrev-never", NULL, NULL, NULL, &err),
		dsc_status(c, NULL, &err),
		dsc_deregister(c, "minrev-never", NULL, NULL, &err),
	};
	for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++) {
		assert_int_equal(rvs[i], DSC_EUNAVAILABLE);
	}
	assert_string_equal(err.message, want);
	assert_int_equal(dsc_client_revision(c), cur);

	/* The deregister did not run. */
	dsc_client_set_min_revision(c, 0);
	assert_int_equal(dsc_resolve(c, "minrev-never", false, NULL, NULL), 0);
	dsc_client_close(c);
}

/* discoveryctl --min-revision: the server's words on stderr, exit status 3. */
static void
test_discoveryctl(void **state)
{
	td_daemon  *d = *state;
	dsc_client *c = client_on(d->url);
	char        out[4096], err[4096], ahead[32], now[32];
	uint64_t    cur = reg(c, "minrev-ctl", "http://127.0.0.1:14");

	snprintf(ahead, sizeof(ahead), "%" PRIu64, cur + 5);
	snprintf(now, sizeof(now), "%" PRIu64, cur);
	const char *behind[] = { DISCOVERYCTL_PATH, "--server", d->url, "--min-revision", ahead,
		"resolve", "minrev-ctl", NULL };
	assert_int_equal(td_run(behind, out, sizeof(out), err, sizeof(err)), 3);
	assert_non_null(strstr(err, "resolve minrev-ctl: this server is at revision"));
	assert_non_null(strstr(err, "behind the requested"));

	const char *fine[] = { DISCOVERYCTL_PATH, "--server", d->url, "--min-revision", now,
		"resolve", "minrev-ctl", NULL };
	assert_int_equal(td_run(fine, out, sizeof(out), err, sizeof(err)), 0);
	assert_non_null(strstr(out, "http://127.0.0.1:14"));

	const char *bad[] = { DISCOVERYCTL_PATH, "--server", d->url, "--min-revision", "-1",
		"resolve", "minrev-ctl", NULL };
	assert_int_equal(td_run(bad, out, sizeof(out), err, sizeof(err)), 2);
	dsc_client_close(c);
}

/*
 * A daemon stopping while a request waits answers it UNAVAILABLE and exits
 * cleanly. With --workers 2 one request waits at most: of two sent at once,
 * one is answered at once, and then the other is surely waiting.
 */
static void
test_stop_while_waiting(void **state)
{
	td_daemon   d;
	const char *args[] = { "--workers", "2", "--min-revision-wait", "60", NULL };
	_Atomic int done   = 0;
	bg_call     b[2];
	(void) state;

	assert_int_equal(td_daemon_start(&d, args), 0);
	for (size_t i = 0; i < 2; i++) {
		b[i] = (bg_call) { .url = d.url, .service = "any", .want = 1000, .done = &done };
		assert_int_equal(pthread_create(&b[i].th, NULL, bg_resolve, &b[i]), 0);
	}
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (atomic_load(&done) < 1 && tu_now_ms() < deadline) {
		tu_sleep_ms(10);
	}
	assert_int_equal(atomic_load(&done), 1);
	assert_int_equal(td_daemon_stop(&d), 0);
	for (size_t i = 0; i < 2; i++) {
		pthread_join(b[i].th, NULL);
		assert_int_equal(b[i].rv, DSC_EUNAVAILABLE);
		assert_non_null(strstr(b[i].err.message, "behind the requested 1000"));
	}
}

/* ---- two independent servers: read_own_writes and failover ---- */

typedef struct pair {
	td_daemon a, b;
	bool      a_up;
} pair;

static int
pair_setup(void **state)
{
	pair       *p      = calloc(1, sizeof(*p));
	const char *args[] = { "--min-revision-wait", "0.2", NULL };
	assert_non_null(p);
	if (td_daemon_start(&p->a, args) != 0) {
		free(p);
		fail_msg("the first discoveryd did not start");
	}
	if (td_daemon_start(&p->b, args) != 0) {
		td_daemon_kill(&p->a);
		free(p);
		fail_msg("the second discoveryd did not start");
	}
	p->a_up = true;
	*state  = p;
	return 0;
}

static int
pair_teardown(void **state)
{
	pair *p = *state;
	if (p->a_up) {
		td_daemon_kill(&p->a);
	}
	td_daemon_kill(&p->b);
	free(p);
	return 0;
}

/*
 * A client with read_own_writes writes to A, which then goes away: its
 * next read, on B (which never saw the write), carries the write's
 * revision and is refused as behind until B gets that far.
 */
static void
test_read_own_writes(void **state)
{
	pair       *p = *state;
	char        urls[300], want[64];
	dsc_error   err;
	dsc_client *other = client_on(p->b.url);

	snprintf(urls, sizeof(urls), "%s,%s", p->a.url, p->b.url);
	dsc_client *c = client_on(urls);
	dsc_client_set_read_own_writes(c, true);
	reg(c, "minrev-own", "http://127.0.0.1:15");
	uint64_t wrote = reg(c, "minrev-own", "http://127.0.0.1:16");
	assert_true(wrote >= 2);
	assert_true(revision_of(other) < wrote);

	assert_int_equal(td_daemon_stop(&p->a), 0);
	p->a_up = false;
	assert_int_equal(dsc_resolve(c, "minrev-own", false, NULL, &err), DSC_EUNAVAILABLE);
	snprintf(want, sizeof(want), "behind the requested %" PRIu64 ";", wrote);
	if (strstr(err.message, want) == NULL) {
		fail_msg("no \"%s\" in: %s", want, err.message);
	}

	/* B catches up (another client's writes): the read is answered there. */
	while (revision_of(other) < wrote) {
		reg(other, "minrev-own", "http://127.0.0.1:16");
		dsc_deregister(other, "minrev-own", "http://127.0.0.1:16", NULL, NULL);
	}
	reg(other, "minrev-own", "http://127.0.0.1:16");
	dsc_instance *x = NULL;
	assert_int_equal(dsc_resolve(c, "minrev-own", false, &x, &err), 0);
	assert_string_equal(x->endpoint, "http://127.0.0.1:16");
	dsc_instance_free(x);
	dsc_client_close(c);
	dsc_client_close(other);
}

/* A server behind in the list is passed over, by Resolve too, for one that is there. */
static void
test_failover_past_behind(void **state)
{
	pair       *p = *state;
	char        urls[300];
	dsc_client *ca = client_on(p->a.url);

	dsc_client *cb = client_on(p->b.url);

	reg(ca, "minrev-fo", "http://127.0.0.1:17");
	uint64_t wrote = reg(ca, "minrev-fo", "http://127.0.0.1:18");
	assert_true(revision_of(cb) < wrote);
	dsc_client_close(cb);

	snprintf(urls, sizeof(urls), "%s,%s", p->b.url, p->a.url); /* B first */
	dsc_client *c = client_on(urls);
	dsc_client_set_min_revision(c, wrote);
	dsc_instance_list *list = NULL;
	assert_int_equal(dsc_get_all(c, "minrev-fo", &list, NULL), 0);
	assert_int_equal(list->count, 2);
	dsc_instance_list_free(list);
	dsc_instance *x = NULL;
	assert_int_equal(dsc_resolve(c, "minrev-fo", false, &x, NULL), 0);
	dsc_instance_free(x);
	assert_true(dsc_client_revision(c) >= wrote);
	dsc_client_close(c);
	dsc_client_close(ca);
}

int
main(void)
{
	const struct CMUnitTest long_wait[] = {
		cmocka_unit_test(test_at_or_below),
		cmocka_unit_test(test_write_within_wait),
		cmocka_unit_test(test_cap),
	};
	const struct CMUnitTest short_wait[] = {
		cmocka_unit_test(test_never_reached),
		cmocka_unit_test(test_discoveryctl),
	};
	const struct CMUnitTest pairs[] = {
		cmocka_unit_test_setup_teardown(test_read_own_writes, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(
		    test_failover_past_behind, pair_setup, pair_teardown),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_stop_while_waiting),
	};
	int failed
	    = cmocka_run_group_tests_name("long wait", long_wait, long_wait_setup, daemon_teardown);
	failed += cmocka_run_group_tests_name(
	    "short wait", short_wait, short_wait_setup, daemon_teardown);
	failed += cmocka_run_group_tests_name("two servers", pairs, NULL, NULL);
	failed += cmocka_run_group_tests_name("stopping", alone, NULL, NULL);
	return failed;
}
