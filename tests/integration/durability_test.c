/*
 * Durability against the real discoveryd: what it acknowledged survives
 * kill -9 and comes back at restart; files it cannot use stop it with exit
 * 2 and are left untouched. Waits are liveness bounds, never speed claims.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

#define N_REGS    200
#define N_WRITERS 8
/* DSI_STORE_RESERVE: the most the revision may jump across kill -9 (store.h). */
#define STORE_RESERVE 4096

static char dir[256];  /* this run's scratch directory */
static char data[300]; /* dir/registry.db */

static int
setup(void **state)
{
	(void) state;
	if (tu_mkdtemp(dir, sizeof(dir), "discovery-durability") != 0) {
		return -1;
	}
	snprintf(data, sizeof(data), "%s/registry.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	chmod(dir, 0700);
	tu_rmtree(dir);
	return 0;
}

static dsc_client *
client_on(const char *url, int timeout_ms)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = timeout_ms;
	assert_ok(dsc_client_open(&c, url, &o));
	return c;
}

/* discoveryd on the scratch file, with extra arguments (NULL-terminated). */
static void
start_on_file(td_daemon *d, const char *const *extra)
{
	const char *args[24] = { "--data", data, "--health-interval", "0.2", "--rise", "1" };
	size_t      n        = 6;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++) {
		args[n++] = extra[i];
	}
	args[n] = NULL;
	assert_int_equal(td_daemon_start(d, args), 0);
}

static const dsc_instance *
find(const dsc_instance_list *l, const char *service, const char *endpoint)
{
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->items[i].service, service) == 0
		    && strcmp(l->items[i].endpoint, endpoint) == 0) {
			return &l->items[i];
		}
	}
	return NULL;
}

/* Everything a registration stores; health and check times are not stored. */
static void
assert_same_registration(const dsc_instance *a, const dsc_instance *b)
{
	assert_string_equal(a->health_path, b->health_path);
	assert_int_equal(a->ttl_ms, b->ttl_ms);
	assert_int_equal(a->weight, b->weight);
	assert_int_equal(a->registered_at_ms, b->registered_at_ms);
	assert_int_equal(a->n_metadata, b->n_metadata);
	for (size_t i = 0; i < a->n_metadata; i++) {
		assert_string_equal(a->metadata[i].key, b->metadata[i].key);
		assert_string_equal(a->metadata[i].value, b->metadata[i].value);
	}
}

static void
test_kill9_brings_back_every_registration(void **state)
{
	th_server *web;
	td_daemon  d;
	(void) state;

	assert_int_equal(th_start(&web), 0);
	assert_int_equal(th_set(web, "/ok", 200), 0);
	start_on_file(&d, NULL);
	dsc_client *c = client_on(d.url, 10000);

	for (int i = 0; i < N_REGS; i++) {
		char svc[32], ep[96], idx[16], zone[16];
		snprintf(svc, sizeof(svc), "dur-s%02d", i % 20);
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/?i=%03d", th_port(web), i);
		snprintf(idx, sizeof(idx), "%d", i);
		snprintf(zone, sizeof(zone), "z%d", i % 3);
		dsc_kv md[] = { { "index", idx }, { "zone", zone }, { "zone", "last-wins" } };
		dsc_registration r = {
			.service     = svc,
			.endpoint    = ep,
			.metadata    = md,
			.n_metadata  = i % 4 == 0 ? 3 : 2,
			.health_path = "/ok",
			.ttl_ms      = i % 10 == 5 ? 60000 : 0,
			.weight      = (uint32_t) (i % 5),
		};
		assert_ok(dsc_register(c, &r, NULL, NULL));
	}
	uint32_t removed = 0;
	assert_ok(dsc_deregister(c, "dur-s19", NULL, &removed, NULL));
	assert_int_equal(removed, N_REGS / 20);
	char gone[96];
	snprintf(gone, sizeof(gone), "http://127.0.0.1:%d/?i=%03d", th_port(web), 18);
	assert_ok(dsc_deregister(c, "dur-s18", gone, &removed, NULL));
	assert_int_equal(removed, 1);

	dsc_instance_list *before, *after;
	assert_ok(dsc_get_all(c, NULL, &before, NULL));
	assert_int_equal(before->count, N_REGS - N_REGS / 20 - 1);
	dsc_client_close(c);
	td_daemon_kill(&d);

	start_on_file(&d, NULL);
	c = client_on(d.url, 10000);
	assert_ok(dsc_get_all(c, NULL, &after, NULL));
	assert_int_equal(after->count, before->count);
	assert_true(after->revision >= before->revision);
	for (size_t i = 0; i < before->count; i++) {
		const dsc_instance *b = &before->items[i];
		const dsc_instance *a = find(after, b->service, b->endpoint);
		assert_non_null(a);
		assert_same_registration(a, b);
		if (a->ttl_ms > 0) {
			/* A full TTL of grace: no heartbeat is missed yet. */
			assert_int_equal(a->health, DSC_HEALTH_UNKNOWN);
		}
	}
	assert_int_equal(dsc_resolve(c, "dur-s19", false, NULL, NULL), DSC_ENOTFOUND);
	bool       is_up;
	dsc_health health;
	assert_int_equal(dsc_is_healthy(c, "dur-s18", gone, &is_up, &health, NULL), DSC_ENOTFOUND);

	/* Health starts UNKNOWN and the checks run at once: polled instances turn healthy. */
	for (int waited = 0;; waited += 50) {
		dsc_instance_list *now;
		size_t             healthy = 0, polled = 0;
		assert_ok(dsc_get_all(c, NULL, &now, NULL));
		for (size_t i = 0; i < now->count; i++) {
			polled += now->items[i].ttl_ms == 0;
			healthy += now->items[i].ttl_ms == 0
			    && now->items[i].health == DSC_HEALTH_HEALTHY;
		}
		dsc_instance_list_free(now);
		if (healthy == polled) {
			break;
		}
		if (waited > TU_LIVENESS_MS) {
			fail_msg(
			    "%zu of %zu polled instances healthy after restart", healthy, polled);
		}
		tu_sleep_ms(50);
	}
	dsc_instance_list_free(before);
	dsc_instance_list_free(after);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	th_stop(web);
}

/* One writer: registers, and deregisters every third instance it registered. */
typedef struct writer {
	pthread_t   thread;
	const char *url;
	int         id;
	int         n;           /* registrations attempted */
	bool        acked[4096]; /* register i answered OK */
	bool        gone[4096];  /* deregister of i answered OK */
	bool        tried[4096]; /* deregister of i sent: unanswered, it may or may not be done */
	bool        stop;        /* read unlocked: a hint to stop */
	int         total_acked;
} writer;

static void
writer_endpoint(const writer *w, int i, char *ep, size_t len)
{
	snprintf(ep, len, "http://127.0.0.1:1/w%d-%d", w->id, i);
}

static void *
writer_main(void *arg)
{
	writer     *w = arg;
	dsc_client *c = client_on(w->url, 2000);
	for (int i = 0; i < 4096 && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED); i++) {
		char             ep[64];
		dsc_registration r = { .service = "dur-w", .endpoint = ep };
		writer_endpoint(w, i, ep, sizeof(ep));
		w->n = i + 1;
		if (dsc_register(c, &r, NULL, NULL) != 0) {
			break; /* the daemon is gone */
		}
		w->acked[i] = true;
		__atomic_fetch_add(&w->total_acked, 1, __ATOMIC_RELAXED);
		if (i % 3 == 2) {
			writer_endpoint(w, i - 1, ep, sizeof(ep));
			uint32_t removed;
			w->tried[i - 1] = true;
			if (dsc_deregister(c, "dur-w", ep, &removed, NULL) != 0) {
				break;
			}
			w->gone[i - 1] = true;
		}
	}
	dsc_client_close(c);
	return NULL;
}

static void
test_acknowledged_writes_survive_kill9_under_load(void **state)
{
	static writer w[N_WRITERS];
	td_daemon     d;
	(void) state;

	start_on_file(&d, NULL);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < N_WRITERS; i++) {
		w[i].url = d.url;
		w[i].id  = i;
		assert_int_equal(pthread_create(&w[i].thread, NULL, writer_main, &w[i]), 0);
	}
	/* Kill it in the middle of the writes, once a good number were answered. */
	for (int waited = 0;; waited += 10) {
		int acked = 0;
		for (int i = 0; i < N_WRITERS; i++) {
			acked += __atomic_load_n(&w[i].total_acked, __ATOMIC_RELAXED);
		}
		if (acked >= 400 || waited > TU_LIVENESS_MS) {
			break;
		}
		tu_sleep_ms(10);
	}
	td_daemon_kill(&d);
	int attempted = 0, acked = 0;
	for (int i = 0; i < N_WRITERS; i++) {
		__atomic_store_n(&w[i].stop, true, __ATOMIC_RELAXED);
		pthread_join(w[i].thread, NULL);
		attempted += w[i].n;
		acked += w[i].total_acked;
	}
	assert_true(acked > 0);

	start_on_file(&d, NULL);
	dsc_client        *c = client_on(d.url, 10000);
	dsc_instance_list *l;
	assert_ok(dsc_get_all(c, "dur-w", &l, NULL));
	size_t lost = 0, resurrected = 0;
	for (int i = 0; i < N_WRITERS; i++) {
		for (int k = 0; k < w[i].n; k++) {
			char ep[64];
			writer_endpoint(&w[i], k, ep, sizeof(ep));
			bool here = find(l, "dur-w", ep) != NULL;
			lost += w[i].acked[k] && !w[i].tried[k] && !here;
			resurrected += w[i].gone[k] && here;
		}
	}
	print_message("%d registrations attempted, %d acknowledged, %zu stored\n", attempted, acked,
	    l->count);
	assert_int_equal(lost, 0);
	assert_int_equal(resurrected, 0);
	dsc_instance_list_free(l);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

/*
 * discoveryd must refuse to start on path with exit 2 and text on stderr,
 * and leave the file's bytes as they were.
 */
static void
expect_refusal(const char *path, const char *text)
{
	const char *argv[] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", path, NULL };
	char        out[1024], err[2048];
	size_t      len0 = 0, len1 = 0;
	char       *before = tu_slurp(path, &len0);
	int         rv     = td_run(argv, out, sizeof(out), err, sizeof(err));
	char       *after  = tu_slurp(path, &len1);
	if (rv != 2 || strstr(err, text) == NULL) {
		fail_msg("exit %d (want 2), stderr: %s (want \"%s\")", rv, err, text);
	}
	assert_true((before == NULL) == (after == NULL));
	if (before != NULL) {
		assert_int_equal(len0, len1);
		assert_memory_equal(before, after, len0);
	}
	free(before);
	free(after);
}

static void
write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static void
test_damaged_file_is_refused_and_left_alone(void **state)
{
	char junk[8192];
	(void) state;
	for (size_t i = 0; i < sizeof(junk); i++) {
		junk[i] = (char) (i * 131 + 7);
	}
	write_file(data, junk, sizeof(junk));
	expect_refusal(data, "damaged or not a discoveryd database");

	/* A real database whose pages were overwritten halfway through. */
	td_daemon d;
	assert_int_equal(unlink(data), 0);
	start_on_file(&d, NULL);
	dsc_client *c = client_on(d.url, 10000);
	for (int i = 0; i < 50; i++) {
		char   ep[64];
		dsc_kv md[] = { { "pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" } };
		dsc_registration r
		    = { .service = "dmg", .endpoint = ep, .metadata = md, .n_metadata = 1 };
		snprintf(ep, sizeof(ep), "http://127.0.0.1:1/%d", i);
		assert_ok(dsc_register(c, &r, NULL, NULL));
	}
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0); /* a clean stop checkpoints into the file */
	FILE *f = fopen(data, "r+b");
	assert_non_null(f);
	fseek(f, 4096 + 100, SEEK_SET);
	fwrite(junk, 1, 4096, f);
	fclose(f);
	expect_refusal(data, "damaged");
}

static void
make_sqlite(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_unknown_or_foreign_schema_is_refused(void **state)
{
	char other[320];
	(void) state;
	make_sqlite(data,
	    "PRAGMA application_id = 1146307377; PRAGMA user_version = 99;"
	    "CREATE TABLE future (x);");
	expect_refusal(data, "schema version 99, newer than this discoveryd knows");

	snprintf(other, sizeof(other), "%s/other.db", dir);
	make_sqlite(other,
	    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);"
	    "INSERT INTO accounts (name) VALUES ('alice');");
	expect_refusal(other, "SQLite database of some other program");
}

/* A WAL database whose last commit is still only in its -wal file. */
static void
make_sqlite_with_wal(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(
	        db, "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_refused_wal_file_keeps_its_wal(void **state)
{
	char   wal[320];
	size_t len0 = 0, len1 = 0;
	(void) state;
	snprintf(wal, sizeof(wal), "%s-wal", data);
	make_sqlite_with_wal(data,
	    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);"
	    "INSERT INTO accounts (name) VALUES ('alice');");
	char *before = tu_slurp(wal, &len0);
	assert_non_null(before);
	assert_true(len0 > 0);
	expect_refusal(data, "SQLite database of some other program");
	char *after = tu_slurp(wal, &len1);
	assert_non_null(after); /* not checkpointed into the file, not deleted */
	assert_int_equal(len0, len1);
	assert_memory_equal(before, after, len0);
	free(before);
	free(after);
}

/* Stored under one configuration, refused by the next: start-up stops, nothing is dropped. */
static void
test_stored_instances_meet_the_new_configuration(void **state)
{
	td_daemon d;
	(void) state;
	start_on_file(&d, NULL);
	dsc_client      *c = client_on(d.url, 10000);
	dsc_registration r = { .service = "loopback", .endpoint = "http://127.0.0.1:1/" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);

	const char *argv[] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", data, "--deny-endpoint", "127.0.0.0/8", NULL };
	char        out[1024], err[2048];
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 2);
	assert_non_null(strstr(err, "this configuration refuses"));
	assert_non_null(strstr(err, "loopback"));

	start_on_file(&d, NULL); /* the old configuration still finds it */
	c = client_on(d.url, 10000);
	assert_ok(dsc_resolve(c, "loopback", false, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);

	/* A file whose stored revision was removed by hand cannot promise monotonic revisions. */
	make_sqlite(data, "DELETE FROM state");
	expect_refusal(data, "no stored revision");
}

static void
test_second_daemon_on_the_same_file_is_refused(void **state)
{
	td_daemon d;
	(void) state;
	start_on_file(&d, NULL);
	dsc_client      *c = client_on(d.url, 10000);
	dsc_registration r = { .service = "first", .endpoint = "http://127.0.0.1:1/" };
	assert_ok(dsc_register(c, &r, NULL, NULL));

	const char *argv[] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", data, NULL };
	char        out[1024], err[2048];
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 2);
	assert_non_null(strstr(err, "in use by another process"));

	/* The first one is unharmed and keeps storing. */
	r.service = "second";
	assert_ok(dsc_register(c, &r, NULL, NULL));
	assert_ok(dsc_resolve(c, "first", false, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

/*
 * Root writes anywhere, so as root the daemon runs as nobody (a copy of
 * the binary in the scratch directory, so nobody can reach it).
 */
static void
test_read_only_directory_is_refused(void **state)
{
	char ro[300], path[340], bin[300], cmd[1400], out[1024], err[2048];
	(void) state;
	snprintf(ro, sizeof(ro), "%s/ro", dir);
	snprintf(path, sizeof(path), "%s/registry.db", ro);
	assert_int_equal(mkdir(ro, 0555), 0);
	assert_int_equal(chmod(ro, 0555), 0);
	if (geteuid() != 0) {
		expect_refusal(path, "cannot write data file");
	} else {
		snprintf(bin, sizeof(bin), "%s/discoveryd", dir);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 0755 '%s' '%s'", DISCOVERYD_PATH,
		    bin, bin, dir);
		assert_int_equal(system(cmd), 0);
		const char *argv[] = { "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
			"--clear-groups", bin, "--listen", "tcp://127.0.0.1:0", "--publish",
			"tcp://127.0.0.1:0", "--data", path, NULL };
		int         rv     = td_run(argv, out, sizeof(out), err, sizeof(err));
		if (rv != 2 || strstr(err, "cannot write data file") == NULL) {
			fail_msg("exit %d (want 2), stderr: %s", rv, err);
		}
	}
	struct stat st;
	assert_int_not_equal(stat(path, &st), 0); /* nothing was created */
}

static void
test_memory_mode_keeps_nothing(void **state)
{
	const char *args[] = { "--data", ":memory:", NULL };
	td_daemon   d;
	struct stat st;
	(void) state;

	assert_int_equal(td_daemon_start(&d, args), 0);
	dsc_client      *c = client_on(d.url, 10000);
	dsc_registration r = { .service = "mem", .endpoint = "http://127.0.0.1:1/" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	assert_ok(dsc_resolve(c, "mem", false, NULL, NULL));
	dsc_client_close(c);
	td_daemon_kill(&d);

	assert_int_equal(td_daemon_start(&d, args), 0);
	c = client_on(d.url, 10000);
	assert_int_equal(dsc_resolve(c, "mem", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	assert_int_not_equal(stat(":memory:", &st), 0); /* no file by that name either */
}

static void
test_auto_deregistration_is_stored(void **state)
{
	const char *extra[] = { "--deregister-after", "0.3", "--fall", "1", NULL };
	th_server  *web;
	td_daemon   d;
	char        ep[64];
	(void) state;

	assert_int_equal(th_start(&web), 0);
	assert_int_equal(th_set(web, "/down", 500), 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", th_port(web));
	start_on_file(&d, extra);
	dsc_client      *c = client_on(d.url, 10000);
	dsc_registration r = { .service = "reaped", .endpoint = ep, .health_path = "/down" };
	dsc_registration k
	    = { .service = "kept", .endpoint = "http://127.0.0.1:1/", .ttl_ms = 600000 };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	assert_ok(dsc_register(c, &k, NULL, NULL));
	for (int waited = 0; dsc_resolve(c, "reaped", false, NULL, NULL) != DSC_ENOTFOUND;
	     waited += 50) {
		assert_true(waited < TU_LIVENESS_MS);
		tu_sleep_ms(50);
	}
	dsc_client_close(c);
	td_daemon_kill(&d);

	start_on_file(&d, NULL);
	c = client_on(d.url, 10000);
	assert_int_equal(dsc_resolve(c, "reaped", false, NULL, NULL), DSC_ENOTFOUND);
	assert_ok(dsc_resolve(c, "kept", false, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	th_stop(web);
}

static void
test_require_counts_stored_services(void **state)
{
	td_daemon d;
	(void) state;
	start_on_file(&d, NULL);
	dsc_client      *c = client_on(d.url, 10000);
	dsc_registration r = { .service = "stored-svc", .endpoint = "http://127.0.0.1:1/" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);

	const char *need[] = { "--require", "stored-svc", NULL };
	start_on_file(&d, need);
	assert_int_equal(td_daemon_stop(&d), 0);

	const char *argv[] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", data, "--require", "stored-svc,absent-svc", NULL };
	char        out[1024], err[2048];
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 1);
	assert_non_null(strstr(err, "absent-svc"));
	assert_null(strstr(err, "stored-svc,"));
}

/* Service/endpoint pairs of a list, sorted as the server sorts them, in one string. */
static void
keys_of(const dsc_instance_list *l, char *out, size_t len)
{
	out[0] = 0;
	for (size_t i = 0; i < l->count; i++) {
		size_t used = strlen(out);
		snprintf(
		    out + used, len - used, "%s %s;", l->items[i].service, l->items[i].endpoint);
	}
}

/* Until the view holds exactly what the server holds (keys only). */
static void
wait_view_matches(dsc_view *v, dsc_client *c)
{
	char want[2048], got[2048];
	for (int waited = 0;; waited += 50) {
		dsc_instance_list *a, *b;
		assert_ok(dsc_get_all(c, NULL, &a, NULL));
		assert_ok(dsc_view_get_all(v, NULL, &b));
		keys_of(a, want, sizeof(want));
		keys_of(b, got, sizeof(got));
		dsc_instance_list_free(a);
		dsc_instance_list_free(b);
		if (strcmp(want, got) == 0) {
			return;
		}
		if (waited > TU_LIVENESS_MS) {
			fail_msg("view \"%s\", server \"%s\"", got, want);
		}
		tu_sleep_ms(50);
	}
}

static void
test_views_converge_after_kill9(void **state)
{
	td_daemon        d;
	char             listen[128], pub[128];
	dsc_view        *v;
	dsc_view_options vo;
	(void) state;

	/* Learn two free ports, then run on them, so the restart is at the same address. */
	start_on_file(&d, NULL);
	snprintf(listen, sizeof(listen), "%s", d.url);
	snprintf(pub, sizeof(pub), "%s", d.pub_url);
	assert_int_equal(td_daemon_stop(&d), 0);
	const char *at[] = { "--listen", listen, "--publish", pub, "--sync-interval", "0.2", NULL };
	start_on_file(&d, at);

	dsc_client      *c = client_on(listen, 10000);
	dsc_registration r = { .service = "vc-a", .endpoint = "http://127.0.0.1:1/a" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	r.service = "vc-b";
	assert_ok(dsc_register(c, &r, NULL, NULL));
	dsc_view_options_init(&vo);
	vo.client.timeout_ms = 2000;
	assert_ok(dsc_view_open(&v, listen, pub, &vo, NULL));
	wait_view_matches(v, c);
	uint64_t rev = dsc_view_revision(v);

	td_daemon_kill(&d);
	start_on_file(&d, at);
	r.service = "vc-c";
	assert_ok(dsc_register(c, &r, NULL, NULL));
	uint32_t removed;
	assert_ok(dsc_deregister(c, "vc-a", NULL, &removed, NULL));
	assert_int_equal(removed, 1);
	wait_view_matches(v, c);
	assert_true(dsc_view_revision(v) >= rev);
	assert_ok(dsc_view_resolve(v, "vc-b", false, NULL));
	assert_int_equal(dsc_view_resolve(v, "vc-a", false, NULL), DSC_ENOTFOUND);

	dsc_view_close(v);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

/* ---- revisions across restarts ---- */

/* The revision a client sees now (an empty service's GetAll carries it). */
static uint64_t
revision_of(dsc_client *c)
{
	dsc_instance_list *l;
	assert_ok(dsc_get_all(c, "rev-probe", &l, NULL));
	uint64_t rev = l->revision;
	dsc_instance_list_free(l);
	return rev;
}

/* n TTL registrations (never polled, so health takes no revision) in service svc. */
static void
register_ttl(dsc_client *c, const char *svc, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		char ep[64];
		snprintf(ep, sizeof(ep), "http://127.0.0.1:1/r%05d", i);
		dsc_registration r = { .service = svc, .endpoint = ep, .ttl_ms = 3600000 };
		assert_ok(dsc_register(c, &r, NULL, NULL));
	}
}

/* A clean stop (SIGTERM, then SIGINT) stores the revision: a restart resumes exactly there. */
static void
test_clean_restart_resumes_exact_revision(void **state)
{
	td_daemon d;
	(void) state;

	start_on_file(&d, NULL);
	dsc_client *c = client_on(d.url, 10000);
	register_ttl(c, "rev", 0, 50);
	uint64_t rev = revision_of(c);
	assert_int_equal(rev, 50);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);

	start_on_file(&d, NULL);
	c = client_on(d.url, 10000);
	assert_int_equal(revision_of(c), rev);
	register_ttl(c, "rev", 50, 10);
	rev = revision_of(c);
	assert_int_equal(rev, 60);
	dsc_client_close(c);
	/* SIGINT stops it as cleanly; td_daemon_stop then only collects it. */
	assert_int_equal(kill(d.pid, SIGINT), 0);
	assert_int_equal(td_daemon_stop(&d), 0);

	start_on_file(&d, NULL);
	c = client_on(d.url, 10000);
	assert_int_equal(revision_of(c), rev);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

/* After kill -9 the revision may jump forward, by at most DSI_STORE_RESERVE. */
static void
check_kill9_jump(int writes)
{
	td_daemon d;
	start_on_file(&d, NULL);
	dsc_client *c = client_on(d.url, 10000);
	register_ttl(c, "jump", 0, writes);
	uint64_t before = revision_of(c);
	assert_int_equal(before, (uint64_t) writes);
	dsc_client_close(c);
	td_daemon_kill(&d);

	start_on_file(&d, NULL);
	c              = client_on(d.url, 10000);
	uint64_t after = revision_of(c);
	print_message("%d writes: revision %llu before kill -9, %llu after\n", writes,
	    (unsigned long long) before, (unsigned long long) after);
	assert_true(after >= before);
	assert_true(after - before <= STORE_RESERVE);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

static void
test_kill9_revision_jump_is_bounded(void **state)
{
	(void) state;
	check_kill9_jump(200);
}

/* Many commits do not add up: the reservation is topped up, not raised per commit. */
static void
test_long_run_revision_jump_is_bounded(void **state)
{
	(void) state;
	check_kill9_jump(10000);
}

/* ---- a slow disk ---- */

typedef struct slow_writer {
	const char *url;
	int         stop; /* atomic */
	int         acked;
} slow_writer;

/* Keeps the writer thread in slow commits. */
static void *
slow_writer_main(void *arg)
{
	slow_writer *w = arg;
	dsc_client  *c = client_on(w->url, TU_LIVENESS_MS);
	for (int i = 0; !__atomic_load_n(&w->stop, __ATOMIC_RELAXED); i++) {
		char ep[64];
		snprintf(ep, sizeof(ep), "http://127.0.0.1:1/slow%d", i);
		dsc_registration r = { .service = "slow-w", .endpoint = ep, .ttl_ms = 3600000 };
		if (dsc_register(c, &r, NULL, NULL) != 0) {
			break;
		}
		__atomic_fetch_add(&w->acked, 1, __ATOMIC_RELAXED);
	}
	dsc_client_close(c);
	return NULL;
}

/*
 * Every fsync 500 ms late: the writer is slow, but nothing else waits for
 * it. Checks keep running at their interval and Resolve keeps answering.
 * Liveness bounds only.
 */
static void
test_slow_disk_stalls_only_the_writer(void **state)
{
	th_server  *web;
	td_daemon   d;
	slow_writer w = { 0 };
	pthread_t   t;
	(void) state;

	if (getenv("DISCOVERY_TEST_WRAPPER") != NULL) {
		skip(); /* a wrapper (valgrind) would take the preload itself */
	}
	assert_int_equal(th_start(&web), 0);
	assert_int_equal(th_set(web, "/ok", 200), 0);
	/* Inherited by discoveryd alone: set around its start. */
	tu_preload pre;
	tu_preload_begin(&pre, SLOW_FSYNC_PATH);
	setenv("DISCOVERY_SLOW_FSYNC_MS", "500", 1);
	start_on_file(&d, NULL); /* checks every 0.2 s */
	tu_preload_end(&pre);

	dsc_client *c = client_on(d.url, TU_LIVENESS_MS);
	char        ep[96];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", th_port(web));
	dsc_registration r = { .service = "checked", .endpoint = ep, .health_path = "/ok" };
	assert_ok(dsc_register(c, &r, NULL, NULL));

	w.url = d.url;
	assert_int_equal(pthread_create(&t, NULL, slow_writer_main, &w), 0);
	/* Wait until the writer is busy with slow commits. */
	for (int waited = 0; __atomic_load_n(&w.acked, __ATOMIC_RELAXED) < 2; waited += 50) {
		if (waited > TU_LIVENESS_MS) {
			fail_msg("no write acknowledged on the slow disk");
		}
		tu_sleep_ms(50);
	}
	int     hits0    = th_hits(web, "/ok");
	int64_t t0       = tu_now_ms();
	int     resolves = 0;
	/* About three seconds of slow commits: resolves answer, checks go on. */
	while (tu_now_ms() - t0 < 3000) {
		dsc_instance *x = NULL;
		assert_ok(dsc_resolve(c, "checked", false, &x, NULL));
		dsc_instance_free(x);
		resolves++;
		tu_sleep_ms(20);
	}
	int     hits    = th_hits(web, "/ok") - hits0;
	int64_t elapsed = tu_now_ms() - t0;
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	print_message("%lld ms of 500 ms fsyncs: %d writes acknowledged, %d checks of an "
	              "instance checked every 200 ms, %d resolves\n",
	    (long long) elapsed, __atomic_load_n(&w.acked, __ATOMIC_RELAXED), hits, resolves);
	/* Generous: a stalled checker would manage about one check per commit. */
	assert_true(hits >= 5);
	bool       up;
	dsc_health health;
	assert_ok(dsc_is_healthy(c, "checked", ep, &up, &health, NULL));
	assert_true(up);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	unsetenv("DISCOVERY_SLOW_FSYNC_MS");
	th_stop(web);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_kill9_brings_back_every_registration, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_acknowledged_writes_survive_kill9_under_load, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_damaged_file_is_refused_and_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unknown_or_foreign_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_refused_wal_file_keeps_its_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stored_instances_meet_the_new_configuration, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_second_daemon_on_the_same_file_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_read_only_directory_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_mode_keeps_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_auto_deregistration_is_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_require_counts_stored_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_views_converge_after_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_clean_restart_resumes_exact_revision, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_kill9_revision_jump_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_long_run_revision_jump_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_slow_disk_stalls_only_the_writer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
