/*
 * GET /v1/snapshot and discoveryctl snapshot save against the real daemon,
 * with libcurl as the client: a copy taken while writers register is
 * consistent (PRAGMA integrity_check), holds every write acknowledged before
 * it began, and is a data file discoveryd starts from; 409 with :memory:;
 * the token always guards it, and --auth-reads on or off guards the reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/testutil.h"

#define WRITERS    4
#define PRELOAD    300 /* instances of about 3 kB: a copy of several backup steps */
#define MAX_WRITES 100000

static td_daemon D;
static char      admin[160];
static char      dir[128];
static char      token_file[256];

/* One HTTP exchange: status and body (grown as it comes). */
typedef struct http {
	long   status;
	char  *body;
	size_t len;
} http;

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	http *h  = arg;
	char *nb = realloc(h->body, h->len + size * n + 1);
	if (nb == NULL) {
		return 0;
	}
	h->body = nb;
	memcpy(h->body + h->len, p, size * n);
	h->len += size * n;
	h->body[h->len] = 0;
	return size * n;
}

/* GET path with token (NULL: none); returns the status, 0 when no answer came. */
static long
get(const char *path, const char *token, http *h)
{
	char               url[512], auth[256];
	struct curl_slist *hs = NULL;
	CURL              *e  = curl_easy_init();
	memset(h, 0, sizeof(*h));
	snprintf(url, sizeof(url), "%s%s", admin, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) TU_LIVENESS_MS);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hs = curl_slist_append(hs, auth);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
	}
	if (curl_easy_perform(e) == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);
	}
	curl_slist_free_all(hs);
	curl_easy_cleanup(e);
	return h->status;
}

static long
status_of(const char *path, const char *token)
{
	http h;
	long st = get(path, token, &h);
	free(h.body);
	return st;
}

/* The admin URL from the daemon's log (it follows the other listeners). */
static int
learn_admin(void)
{
	for (int64_t end = tu_now_ms() + TU_LIVENESS_MS; tu_now_ms() < end; tu_sleep_ms(10)) {
		size_t len;
		char  *log = tu_slurp(D.log_path, &len);
		char  *at  = log != NULL ? strstr(log, "admin on ") : NULL;
		if (at != NULL) {
			sscanf(at + strlen("admin on "), "%159s", admin);
			free(log);
			return 0;
		}
		free(log);
	}
	return -1;
}

static void
start(const char *const *extra)
{
	const char *args[32] = { "--admin", "http://127.0.0.1:0", "--health-interval", "3600" };
	size_t      n        = 4;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		args[n++] = extra[i];
	}
	args[n] = NULL;
	assert_int_equal(td_daemon_start(&D, args), 0);
	assert_int_equal(learn_admin(), 0);
}

static void
stop(void)
{
	assert_int_equal(td_daemon_stop(&D), 0);
}

static int
teardown(void **state)
{
	(void) state;
	if (D.pid > 0) {
		td_daemon_kill(&D);
	}
	return 0;
}

static void
write_file(const char *path, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* ---- the copy under write load ---- */

/* One writer: registers load-N instances one after another until told to stop. */
typedef struct writer {
	pthread_t   thread;
	int         id;
	const char *token;
	atomic_int  acked; /* instances 0..acked-1 have been acknowledged */
	atomic_bool stop;
	int         failed; /* the first failure's dsc_err */
} writer;

static void *
writer_main(void *arg)
{
	writer            *w = arg;
	dsc_client        *c;
	dsc_client_options o;
	char               service[32], endpoint[64], big[3][1001];
	dsc_kv             meta[3] = { { "a", big[0] }, { "b", big[1] }, { "c", big[2] } };

	dsc_client_options_init(&o);
	o.auth_token = w->token;
	o.timeout_ms = (int32_t) TU_LIVENESS_MS;
	for (int i = 0; i < 3; i++) {
		memset(big[i], 'a' + w->id + i, 1000);
		big[i][1000] = 0;
	}
	if ((w->failed = dsc_client_open(&c, D.url, &o)) != 0) {
		return NULL;
	}
	snprintf(service, sizeof(service), "load-%d", w->id);
	for (int i = 0; i < MAX_WRITES && !atomic_load(&w->stop); i++) {
		snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", 1024 + i);
		dsc_registration r = { .service = service,
			.endpoint               = endpoint,
			.metadata               = meta,
			.n_metadata             = 3,
			.ttl_ms                 = 600000 };
		if ((w->failed = dsc_register(c, &r, NULL, NULL)) != 0) {
			break;
		}
		atomic_store(&w->acked, i + 1);
	}
	dsc_client_close(c);
	return NULL;
}

static int
total_acked(writer *ws)
{
	int n = 0;
	for (int i = 0; i < WRITERS; i++) {
		n += atomic_load(&ws[i].acked);
	}
	return n;
}

/* Every instance writer t acknowledged before the copy began is in the file, intact. */
static void
check_copy(const char *path, const int *before)
{
	sqlite3      *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *) sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db,
	                     "SELECT count(*) FROM instances i WHERE service = ?1 AND endpoint = ?2"
	                     " AND (SELECT count(*) FROM metadata m WHERE m.service = i.service"
	                     " AND m.endpoint = i.endpoint) = 3",
	                     -1, &st, NULL),
	    SQLITE_OK);
	for (int t = 0; t < WRITERS; t++) {
		char service[32], endpoint[64];
		snprintf(service, sizeof(service), "load-%d", t);
		for (int i = 0; i < before[t]; i++) {
			snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", 1024 + i);
			sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			if (sqlite3_column_int(st, 0) != 1) {
				fail_msg(
				    "%s %s was acknowledged before the snapshot but is not in it",
				    service, endpoint);
			}
			sqlite3_reset(st);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
test_snapshot_under_write_load(void **state)
{
	writer ws[WRITERS];
	int    before[WRITERS];
	char   copy[256];
	http   h;
	(void) state;
	snprintf(copy, sizeof(copy), "%s/copy.db", dir);
	start(NULL);
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < WRITERS; i++) {
		ws[i].id = i;
		atomic_init(&ws[i].acked, 0);
		atomic_init(&ws[i].stop, false);
		assert_int_equal(pthread_create(&ws[i].thread, NULL, writer_main, &ws[i]), 0);
	}
	for (int64_t end = tu_now_ms() + 4 * TU_LIVENESS_MS;
	     total_acked(ws) < PRELOAD && tu_now_ms() < end;) {
		tu_sleep_ms(20);
	}
	assert_true(total_acked(ws) >= PRELOAD);
	/* What is acknowledged now must be in the copy; the writers go on meanwhile. */
	for (int i = 0; i < WRITERS; i++) {
		before[i] = atomic_load(&ws[i].acked);
	}
	assert_int_equal(get("/v1/snapshot", NULL, &h), 200);
	int during = total_acked(ws);
	for (int i = 0; i < WRITERS; i++) {
		atomic_store(&ws[i].stop, true);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(ws[i].thread, NULL);
		assert_int_equal(ws[i].failed, 0);
	}
	print_message("snapshot of %zu bytes; %d writes acknowledged before it, %d by its end\n",
	    h.len, before[0] + before[1] + before[2] + before[3], during);
	assert_true(h.len > 4 * 64 * 4096); /* more than a few backup steps */
	write_file(copy, h.body, h.len);
	free(h.body);
	check_copy(copy, before);
	stop();

	/* The copy is a data file: discoveryd starts from it and serves what it holds. */
	start((const char *[]) { "--data", copy, NULL });
	dsc_client *c;
	assert_ok(dsc_client_open(&c, D.url, NULL));
	for (int t = 0; t < WRITERS; t++) {
		char               service[32];
		dsc_instance_list *l;
		snprintf(service, sizeof(service), "load-%d", t);
		assert_ok(dsc_get_all(c, service, &l, NULL));
		assert_true(l->count >= (size_t) before[t]);
		dsc_instance_list_free(l);
	}
	dsc_client_close(c);
	stop();
}

/* ---- refusals and access ---- */

static void
test_memory_is_409(void **state)
{
	http h;
	(void) state;
	start((const char *[]) { "--data", ":memory:", NULL });
	assert_int_equal(get("/v1/snapshot", NULL, &h), 409);
	assert_non_null(strstr(h.body, "\"error\":"));
	assert_non_null(strstr(h.body, ":memory:"));
	free(h.body);

	char        out[4096], err[4096], file[256];
	const char *argv[]
	    = { DISCOVERYCTL_PATH, "--admin", admin, "snapshot", "save", file, NULL };
	snprintf(file, sizeof(file), "%s/none.db", dir);
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 4);
	assert_non_null(strstr(err, "409"));
	assert_non_null(strstr(err, ":memory:")); /* the server's reason, from its JSON error */
	assert_int_not_equal(access(file, F_OK), 0);
	stop();
}

static void
make_token_file(void)
{
	snprintf(token_file, sizeof(token_file), "%s/token", dir);
	FILE *f = fopen(token_file, "w");
	assert_non_null(f);
	fputs("s3cret\n", f);
	fclose(f);
	chmod(token_file, 0600);
}

/* A token without --auth-reads: reads stay open, the snapshot needs it. */
static void
test_token_guards_snapshot(void **state)
{
	char out[4096], err[4096], file[256];
	(void) state;
	make_token_file();
	start((const char *[]) { "--token-file", token_file, NULL });
	assert_int_equal(status_of("/v1/snapshot", NULL), 401);
	assert_int_equal(status_of("/v1/snapshot", "wrong"), 403);
	assert_int_equal(status_of("/v1/snapshot", "s3cret"), 200);
	assert_int_equal(status_of("/v1/services", NULL), 200);
	assert_int_equal(status_of("/v1/instances", NULL), 200);
	assert_int_equal(status_of("/v1/status", NULL), 200);
	assert_int_equal(status_of("/metrics", NULL), 200);
	assert_int_equal(status_of("/healthz", NULL), 200);
	assert_int_equal(status_of("/readyz", NULL), 200);

	/* discoveryctl: 6 without the token, 0 with it, and a 0600 file. */
	snprintf(file, sizeof(file), "%s/saved.db", dir);
	const char *bare[]
	    = { DISCOVERYCTL_PATH, "--admin", admin, "snapshot", "save", file, NULL };
	assert_int_equal(td_run(bare, out, sizeof(out), err, sizeof(err)), 6);
	assert_non_null(strstr(err, "token"));
	assert_int_not_equal(access(file, F_OK), 0);
	const char *with[] = { DISCOVERYCTL_PATH, "--admin", admin, "--token-file", token_file,
		"snapshot", "save", file, NULL };
	assert_int_equal(td_run(with, out, sizeof(out), err, sizeof(err)), 0);
	assert_non_null(strstr(out, "saved"));
	struct stat st;
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	stop();
	/* It is a data file. */
	start((const char *[]) { "--data", file, NULL });
	stop();
	unlink(token_file);
}

/* --auth-reads: every /v1/ request and /metrics need the token too; probes never. */
static void
test_auth_reads_on(void **state)
{
	(void) state;
	make_token_file();
	start((const char *[]) { "--token-file", token_file, "--auth-reads", NULL });
	assert_int_equal(status_of("/v1/status", NULL), 401);
	assert_int_equal(status_of("/v1/status", "s3cret"), 200);
	assert_int_equal(status_of("/v1/services", NULL), 401);
	assert_int_equal(status_of("/metrics", NULL), 401);
	assert_int_equal(status_of("/v1/snapshot", NULL), 401);
	assert_int_equal(status_of("/v1/snapshot", "s3cret"), 200);
	assert_int_equal(status_of("/healthz", NULL), 200);
	assert_int_equal(status_of("/readyz", NULL), 200);
	stop();
	unlink(token_file);
}

/* No token configured: nothing needs one, the snapshot included. */
static void
test_no_token_open(void **state)
{
	char out[4096], err[4096], dead[64], file[256];
	int  dead_fd = -1;
	(void) state;
	start(NULL);
	assert_int_equal(status_of("/v1/snapshot", NULL), 200);
	assert_int_equal(status_of("/v1/status", NULL), 200);
	stop();
	/* Nothing listening: exit 3, and no file left behind. */
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "http", &dead_fd), 0);
	snprintf(file, sizeof(file), "%s/dead.db", dir);
	const char *argv[] = { DISCOVERYCTL_PATH, "--admin", dead, "snapshot", "save", file, NULL };
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 3);
	assert_int_not_equal(access(file, F_OK), 0);
	close(dead_fd);
}

static void *
register_one(void *arg)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = (int32_t) TU_LIVENESS_MS;
	/* Never checked in time to matter: the port is this process's, held shut. */
	char ep[64];
	int  held = -1;
	tu_dead_url(ep, sizeof(ep), "http", &held);
	dsc_registration r = { .service = "slow", .endpoint = ep };
	if (dsc_client_open(&c, D.url, &o) == 0) {
		*(int *) arg = dsc_register(c, &r, NULL, NULL);
		dsc_client_close(c);
	}
	if (held >= 0) {
		close(held);
	}
	return NULL;
}

/*
 * One snapshot at a time: with the writer held in a slow commit (an fsync
 * made slow by LD_PRELOAD), two snapshots asked at once get one 200 and
 * one 429.
 */
static void
test_one_snapshot_at_a_time(void **state)
{
	char      ms[32];
	pthread_t t;
	int       reg_rv = -1;
	http      h[2];
	CURL     *e[2];
	(void) state;
	snprintf(ms, sizeof(ms), "%d", 500 * tu_slowdown()); /* start-up makes 7 fsyncs */
	tu_preload pre;
	tu_preload_begin(&pre, SLOW_FSYNC_PATH); /* ASan tolerates it before its runtime */
	setenv("DISCOVERY_SLOW_FSYNC_MS", ms, 1);
	start(NULL);
	tu_preload_end(&pre);
	unsetenv("DISCOVERY_SLOW_FSYNC_MS");
	assert_int_equal(pthread_create(&t, NULL, register_one, &reg_rv), 0);
	tu_sleep_ms(100 * tu_slowdown()); /* the register reaches the writer, which waits */
	CURLM *m = curl_multi_init();
	for (int i = 0; i < 2; i++) {
		char url[512];
		memset(&h[i], 0, sizeof(h[i]));
		snprintf(url, sizeof(url), "%s/v1/snapshot", admin);
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_NOPROXY, "*");
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &h[i]);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, (long) TU_LIVENESS_MS);
		curl_multi_add_handle(m, e[i]);
	}
	for (int running = 1; running > 0;) {
		curl_multi_perform(m, &running);
		if (running > 0) {
			curl_multi_poll(m, NULL, 0, 100, NULL);
		}
	}
	for (int i = 0; i < 2; i++) {
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &h[i].status);
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
	}
	curl_multi_cleanup(m);
	pthread_join(t, NULL);
	assert_int_equal(reg_rv, 0);
	long lo = h[0].status < h[1].status ? h[0].status : h[1].status;
	long hi = h[0].status < h[1].status ? h[1].status : h[0].status;
	if (lo != 200 || hi != 429) {
		fail_msg("two snapshots at once answered %ld and %ld, want 200 and 429", lo, hi);
	}
	free(h[0].body);
	free(h[1].body);
	stop();
}

static int
group_setup(void **state)
{
	if (tu_mkdtemp(dir, sizeof(dir), "snapshot-test") != 0) {
		return -1;
	}
	return tu_curl_setup(state);
}

static int
group_teardown(void **state)
{
	tu_rmtree(dir);
	return tu_curl_teardown(state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_snapshot_under_write_load, teardown),
		cmocka_unit_test_teardown(test_memory_is_409, teardown),
		cmocka_unit_test_teardown(test_token_guards_snapshot, teardown),
		cmocka_unit_test_teardown(test_auth_reads_on, teardown),
		cmocka_unit_test_teardown(test_no_token_open, teardown),
		cmocka_unit_test_teardown(test_one_snapshot_at_a_time, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
