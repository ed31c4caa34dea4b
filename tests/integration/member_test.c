/*
 * cluster/member against a real single-member etcd on loopback: three
 * members in one process see each other, a duplicate name is refused, a
 * close is seen at once (revoke) and a crash after the lease expires, views
 * agree on owners, the fence compares hold and fail as member.h says, a
 * paused etcd ends the membership and the member rejoins with a new key,
 * and leave/rejoin. Exits 77 (skipped) without etcd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/member.h"
#include "support/etcd.h"
#include "support/testutil.h"

#define POLL_MS   20
#define MAX_NOTES 256

/* What a member's callback heard. */
typedef struct notes {
	pthread_mutex_t  lock;
	size_t           n;
	dsi_member_event ev[MAX_NOTES];
	char             name[MAX_NOTES][32];
	int64_t          crev[MAX_NOTES];
} notes;

typedef struct fx {
	te_etcd etcd;
	dsi_log log;
	int     prefix_seq; /* each test under its own prefix */
	char    prefix[32];
} fx;

static int
setup(void **state)
{
	fx         *f       = calloc(1, sizeof(*f));
	const char *extra[] = { "--experimental-watch-progress-notify-interval", "500ms", NULL };
	if (f == NULL || tu_curl_setup(state) != 0) {
		free(f);
		return -1;
	}
	if (te_etcd_start(&f->etcd, te_etcd_path(), NULL, extra, TU_LIVENESS_MS) != 0) {
		free(f);
		return -1;
	}
	f->log.level = DSI_LOG_INFO;
	f->log.out   = stderr;
	*state       = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;
	te_etcd_stop(&f->etcd);
	te_etcd_remove(&f->etcd);
	free(f);
	return tu_curl_teardown(state);
}

/* A fresh prefix per test. */
static int
per_test(void **state)
{
	fx *f = *state;
	snprintf(f->prefix, sizeof(f->prefix), "/member-test/%d/", ++f->prefix_seq);
	return 0;
}

static void
record(void *arg, dsi_member_event ev, const char *name, int64_t crev)
{
	notes *n = arg;
	pthread_mutex_lock(&n->lock);
	if (n->n < MAX_NOTES) {
		n->ev[n->n] = ev;
		snprintf(n->name[n->n], sizeof(n->name[0]), "%s", name);
		n->crev[n->n] = crev;
		n->n++;
	}
	pthread_mutex_unlock(&n->lock);
}

/* How many times the callback heard ev about name. */
static int
heard(notes *n, dsi_member_event ev, const char *name)
{
	int c = 0;
	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < n->n; i++) {
		c += n->ev[i] == ev && strcmp(n->name[i], name) == 0;
	}
	pthread_mutex_unlock(&n->lock);
	return c;
}

static void
notes_init(notes *n)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
}

static dsi_member *
open_member(fx *f, const char *name, int ttl_ms, notes *n)
{
	dsi_member *m = NULL;
	dsc_error   err;
	int rv = dsi_member_open(&m, f->etcd.url, NULL, f->prefix, name, "nng://127.0.0.1:1",
	    ttl_ms, &f->log, n != NULL ? record : NULL, n, &err);
	if (rv != 0) {
		fail_msg("dsi_member_open(%s): %s", name, err.message);
	}
	return m;
}

/* The number of members m sees and whether name is among them. */
static size_t
members(dsi_member *m, const char *name, bool *has)
{
	dsi_membership v;
	assert_ok(dsi_member_view(m, &v));
	size_t n = v.n_members;
	*has     = false;
	for (size_t i = 0; i < n; i++) {
		*has = *has || strcmp(v.members[i].name, name) == 0;
	}
	dsi_member_view_free(&v);
	return n;
}

/* Waits until m sees n members, name among them (has) or not; false after bound_ms. */
static bool
wait_members(dsi_member *m, size_t n, const char *name, bool has, int bound_ms)
{
	int64_t end = tu_now_ms() + bound_ms;
	for (;;) {
		bool h;
		if (members(m, name, &h) == n && h == has) {
			return true;
		}
		if (tu_now_ms() > end) {
			return false;
		}
		tu_sleep_ms(POLL_MS);
	}
}

static int64_t
self_create(dsi_member *m)
{
	dsi_membership v;
	assert_ok(dsi_member_view(m, &v));
	int64_t c = v.self_create_revision;
	dsi_member_view_free(&v);
	return c;
}

static void
test_three_members(void **state)
{
	fx         *f   = *state;
	int         ttl = tu_stretch_ms(2000);
	dsi_member *m[] = { open_member(f, "a", ttl, NULL), open_member(f, "b", ttl, NULL),
		open_member(f, "c", ttl, NULL) };
	for (int i = 0; i < 3; i++) {
		assert_true(wait_members(m[i], 3, "c", true, TU_LIVENESS_MS));
		dsi_membership v;
		assert_ok(dsi_member_view(m[i], &v));
		assert_string_equal(v.members[0].name, "a");
		assert_string_equal(v.members[2].name, "c");
		assert_string_equal(v.members[i].info, "nng://127.0.0.1:1");
		/* My own entry carries my key's create revision. */
		assert_true(v.self_create_revision > 0);
		assert_int_equal(v.members[i].create_revision, v.self_create_revision);
		assert_true(v.members_revision >= v.members[2].create_revision);
		assert_true(v.revision >= v.members_revision);
		dsi_member_view_free(&v);
	}
	assert_true(dsi_member_ttl_ms(m[0]) >= 2000);
	for (int i = 0; i < 3; i++) {
		dsi_member_close(m[i]);
	}
}

static void
test_duplicate_name_refused(void **state)
{
	fx         *f = *state;
	dsi_member *a = open_member(f, "a", tu_stretch_ms(2000), NULL), *dup = NULL;
	dsc_error   err;
	assert_int_equal(dsi_member_open(&dup, f->etcd.url, NULL, f->prefix, "a", NULL, 2000,
	                     &f->log, NULL, NULL, &err),
	    DSC_ESTATE);
	assert_null(dup);
	print_message("refused: %s\n", err.message);
	assert_non_null(strstr(err.message, "\"a\""));
	assert_non_null(strstr(err.message, "--node-name"));
	/* A bad name is refused before etcd is asked. */
	assert_int_equal(dsi_member_open(&dup, f->etcd.url, NULL, f->prefix, "a/b", NULL, 2000,
	                     &f->log, NULL, NULL, &err),
	    DSC_EINVAL);
	/* The refusal left the first member alone. */
	bool has;
	assert_int_equal(members(a, "a", &has), 1);
	assert_true(has);
	dsi_member_close(a);
}

/* A TTL far beyond the bound: a departure seen within the bound was a revoke. */
static void
test_close_is_seen_at_once(void **state)
{
	fx   *f   = *state;
	int   ttl = 4 * TU_LIVENESS_MS;
	notes na, nc;
	notes_init(&na);
	notes_init(&nc);
	dsi_member *a = open_member(f, "a", ttl, &na), *b = open_member(f, "b", ttl, NULL),
	           *c = open_member(f, "c", ttl, &nc);
	assert_true(wait_members(a, 3, "c", true, TU_LIVENESS_MS));
	assert_true(wait_members(c, 3, "a", true, TU_LIVENESS_MS));
	dsi_member_close(b);
	assert_true(wait_members(a, 2, "b", false, TU_LIVENESS_MS));
	assert_true(wait_members(c, 2, "b", false, TU_LIVENESS_MS));
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while ((heard(&na, DSI_MEMBER_LEFT, "b") == 0 || heard(&nc, DSI_MEMBER_LEFT, "b") == 0)
	    && tu_now_ms() < end) {
		tu_sleep_ms(POLL_MS);
	}
	assert_int_equal(heard(&na, DSI_MEMBER_LEFT, "b"), 1);
	assert_int_equal(heard(&nc, DSI_MEMBER_LEFT, "b"), 1);
	dsi_member_close(a);
	dsi_member_close(c);
}

/* A crash does not revoke: the others see it once the 2 s lease expires. */
static void
test_crash_expires(void **state)
{
	fx   *f = *state;
	notes na;
	notes_init(&na);
	dsi_member *a = open_member(f, "a", 2000, &na), *c = open_member(f, "c", 2000, NULL);
	assert_true(wait_members(a, 2, "c", true, TU_LIVENESS_MS));
	dsi_member_crash_for_test(c);
	assert_true(wait_members(a, 1, "c", false, TU_LIVENESS_MS));
	assert_int_equal(heard(&na, DSI_MEMBER_JOINED, "c"), 1);
	dsi_member_close(c);
	dsi_member_close(a);
}

static void
test_owners_agree(void **state)
{
	fx         *f   = *state;
	int         ttl = tu_stretch_ms(2000);
	dsi_member *a = open_member(f, "a", ttl, NULL), *b = open_member(f, "b", ttl, NULL),
	           *c = open_member(f, "c", ttl, NULL);
	assert_true(wait_members(a, 3, "c", true, TU_LIVENESS_MS));
	assert_true(wait_members(c, 3, "a", true, TU_LIVENESS_MS));
	dsi_membership va, vc;
	assert_ok(dsi_member_view(a, &va));
	assert_ok(dsi_member_view(c, &vc));
	int per[3] = { 0 };
	for (int i = 0; i < 300; i++) {
		char s[32], e[64];
		snprintf(s, sizeof(s), "svc%d", i % 7);
		snprintf(e, sizeof(e), "127.0.0.1:%d", 30000 + i);
		const char *oa = dsi_member_owner(&va, s, e), *oc = dsi_member_owner(&vc, s, e);
		assert_non_null(oa);
		assert_string_equal(oa, oc);
		per[oa[0] - 'a']++;
	}
	for (int j = 0; j < 3; j++) {
		assert_true(per[j] > 0);
	}
	dsi_member_view_free(&va);
	dsi_member_view_free(&vc);
	dsi_member_close(a);
	dsi_member_close(b);
	dsi_member_close(c);
}

/* A health write fenced by v's compares: true when it committed. */
static bool
fenced_write(fx *f, const dsi_membership *v)
{
	dsi_etcd *e;
	dsc_error err;
	char      key[64];
	snprintf(key, sizeof(key), "%shealth/svc/127.0.0.1:1", f->prefix);
	assert_ok(dsi_etcd_open(&e, f->etcd.url, tu_stretch_ms(5000), &err));
	dsi_etcd_cmp cmps[2];
	size_t       n = dsi_member_fence(v, cmps);
	if (n == 0) {
		dsi_etcd_close(e);
		return false;
	}
	dsi_etcd_op       op  = { .type = DSI_ETCD_OP_PUT,
		       .key             = key,
		       .key_len         = strlen(key),
		       .value           = "unhealthy",
		       .value_len       = 9 };
	dsi_etcd_txn_req  req = { .cmps = cmps, .n_cmps = n, .success = &op, .n_success = 1 };
	dsi_etcd_txn_resp r;
	if (dsi_etcd_txn(e, &req, &r, &err) != 0) {
		fail_msg("fenced txn: %s", err.message);
	}
	bool ok = r.succeeded;
	dsi_etcd_txn_resp_free(&r);
	dsi_etcd_close(e);
	return ok;
}

static void
test_fence(void **state)
{
	fx *f = *state;
	/*
	 * A long lease: on a loaded machine (ThreadSanitizer in CI) a late
	 * keepalive of a 2 s lease ended a membership mid-test, and the rejoin's
	 * new key failed the fence this test expects to hold.
	 */
	int            ttl = tu_stretch_ms(10000);
	dsi_member    *a = open_member(f, "a", ttl, NULL), *b = open_member(f, "b", ttl, NULL);
	dsi_membership v1, v2;
	assert_true(wait_members(a, 2, "b", true, TU_LIVENESS_MS));
	assert_ok(dsi_member_view(a, &v1));
	assert_true(fenced_write(f, &v1));
	/* A join since the view fails the write; a fresh view passes. */
	dsi_member *c = open_member(f, "c", ttl, NULL);
	assert_false(fenced_write(f, &v1));
	assert_true(wait_members(a, 3, "c", true, TU_LIVENESS_MS));
	assert_ok(dsi_member_view(a, &v2));
	assert_true(fenced_write(f, &v2));
	/* A departure alone does not (it moves no survivor's instance). */
	dsi_member_close(c);
	assert_true(fenced_write(f, &v2));
	/* My own departure does: the old view's compare on my key fails. */
	assert_ok(dsi_member_leave(a));
	/*
	 * leave's wait for the revoke is bounded and may return first on a loaded
	 * machine; once the key is gone (b sees it), the compare must fail.
	 */
	assert_true(wait_members(b, 1, "a", false, TU_LIVENESS_MS));
	assert_false(fenced_write(f, &v2));
	dsi_membership v3;
	assert_ok(dsi_member_view(a, &v3));
	assert_int_equal(v3.self_create_revision, 0);
	assert_false(fenced_write(f, &v3)); /* no compares: nothing to write */
	dsi_member_view_free(&v1);
	dsi_member_view_free(&v2);
	dsi_member_view_free(&v3);
	dsi_member_close(a);
	dsi_member_close(b);
}

/*
 * etcd paused past the TTL: the keepalives fail for a whole TTL, the
 * membership ends (callback), and after the resume the node rejoins under a
 * new key (a new create revision, callback RESTORED).
 */
static void
test_paused_etcd(void **state)
{
	fx   *f = *state;
	notes na;
	notes_init(&na);
	dsi_member *a   = open_member(f, "a", 2000, &na);
	int64_t     old = self_create(a);
	assert_true(old > 0);
	assert_int_equal(te_etcd_pause(&f->etcd), 0);
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while (heard(&na, DSI_MEMBER_ENDED, "a") == 0 && tu_now_ms() < end) {
		tu_sleep_ms(POLL_MS);
	}
	int ended = heard(&na, DSI_MEMBER_ENDED, "a");
	/*
	 * Silent for more than 3 TTLs: the watcher gives the stream up and
	 * re-reads the list once etcd answers again.
	 */
	tu_sleep_ms(3 * dsi_member_ttl_ms(a) + 500);
	te_etcd_resume(&f->etcd);
	assert_int_equal(ended, 1);
	end = tu_now_ms() + TU_LIVENESS_MS;
	while ((self_create(a) == 0 || heard(&na, DSI_MEMBER_RESTORED, "a") == 0)
	    && tu_now_ms() < end) {
		tu_sleep_ms(POLL_MS);
	}
	int64_t now = self_create(a);
	assert_true(now > old);
	assert_true(heard(&na, DSI_MEMBER_RESTORED, "a") >= 1);
	assert_true(wait_members(a, 1, "a", true, TU_LIVENESS_MS));
	/* The list followed: the old key left and the new one joined. */
	end = tu_now_ms() + TU_LIVENESS_MS;
	while ((heard(&na, DSI_MEMBER_LEFT, "a") == 0 || heard(&na, DSI_MEMBER_JOINED, "a") == 0)
	    && tu_now_ms() < end) {
		tu_sleep_ms(POLL_MS);
	}
	assert_int_equal(heard(&na, DSI_MEMBER_LEFT, "a"), 1);
	assert_int_equal(heard(&na, DSI_MEMBER_JOINED, "a"), 1);
	dsi_membership v;
	assert_ok(dsi_member_view(a, &v));
	assert_int_equal(v.members[0].create_revision, now);
	dsi_member_view_free(&v);
	dsi_member_close(a);
}

static void
test_leave_rejoin(void **state)
{
	fx   *f   = *state;
	int   ttl = 4 * TU_LIVENESS_MS; /* b sees the leave within the bound: a revoke */
	notes na;
	notes_init(&na);
	dsi_member *a = open_member(f, "a", ttl, &na), *b = open_member(f, "b", ttl, NULL);
	assert_true(wait_members(b, 2, "a", true, TU_LIVENESS_MS));
	int64_t old = self_create(a);
	assert_ok(dsi_member_leave(a));
	assert_int_equal(self_create(a), 0);
	assert_true(wait_members(b, 1, "a", false, TU_LIVENESS_MS));
	assert_ok(dsi_member_leave(a)); /* twice is fine */
	assert_ok(dsi_member_rejoin(a, TU_LIVENESS_MS));
	assert_true(self_create(a) > old);
	assert_true(wait_members(b, 2, "a", true, TU_LIVENESS_MS));
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while (heard(&na, DSI_MEMBER_RESTORED, "a") == 0 && tu_now_ms() < end) {
		tu_sleep_ms(POLL_MS);
	}
	assert_int_equal(heard(&na, DSI_MEMBER_ENDED, "a"), 1);
	assert_int_equal(heard(&na, DSI_MEMBER_RESTORED, "a"), 1);
	dsi_member_close(a);
	dsi_member_close(b);
}

int
main(void)
{
	if (te_etcd_path() == NULL) {
		printf("SKIP: no etcd (install etcd-server: scripts/deps.sh test, or set "
		       "DISCOVERY_ETCD)\n");
		return TE_SKIP;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_three_members, per_test),
		cmocka_unit_test_setup(test_duplicate_name_refused, per_test),
		cmocka_unit_test_setup(test_close_is_seen_at_once, per_test),
		cmocka_unit_test_setup(test_crash_expires, per_test),
		cmocka_unit_test_setup(test_owners_agree, per_test),
		cmocka_unit_test_setup(test_fence, per_test),
		cmocka_unit_test_setup(test_leave_rejoin, per_test),
		cmocka_unit_test_setup(test_paused_etcd, per_test),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
