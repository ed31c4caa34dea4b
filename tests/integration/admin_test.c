/*
 * The HTTP admin endpoint against the real daemon, with libcurl as the
 * client: probes, the JSON catalog and its revision header, ?healthy=true,
 * 404s, blocking queries (woken by a change, timed out, a thousand parked),
 * access with --auth-reads, bad requests, and /metrics read by Debian's
 * python3-prometheus-client parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

static td_daemon D;
static char      admin[160]; /* the daemon's bound admin URL */
static char      dir[128];

/* One HTTP exchange's outcome. */
typedef struct http {
	long      status;
	char      body[65536];
	size_t    len;
	long long revision; /* X-Discovery-Revision; -1 when absent */
} http;

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	http  *h    = arg;
	size_t take = size * n;
	if (take > sizeof(h->body) - 1 - h->len) {
		take = sizeof(h->body) - 1 - h->len;
	}
	memcpy(h->body + h->len, p, take);
	h->len += take;
	h->body[h->len] = 0;
	return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	http *h = arg;
	if (size * n > 22 && strncasecmp(p, "X-Discovery-Revision:", 21) == 0) {
		h->revision = atoll(p + 21);
	}
	return size * n;
}

static CURL *
easy(const char *path, const char *token, http *h)
{
	char  url[4096];
	CURL *e = curl_easy_init();
	memset(h, 0, sizeof(*h));
	h->revision = -1;
	snprintf(url, sizeof(url), "%s%s", admin, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) TU_LIVENESS_MS);
	if (token != NULL) {
		static __thread char auth[256];
		struct curl_slist   *hs = NULL;
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hs = curl_slist_append(hs, auth);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
		curl_easy_setopt(e, CURLOPT_PRIVATE, hs);
	}
	return e;
}

static void
easy_done(CURL *e)
{
	struct curl_slist *hs = NULL;
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &hs);
	curl_slist_free_all(hs);
	curl_easy_cleanup(e);
}

/* GET path (with token when not NULL); returns the status, 0 when no answer came. */
static long
get(const char *path, const char *token, http *h)
{
	CURL *e = easy(path, token, h);
	if (curl_easy_perform(e) == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->status);
	}
	easy_done(e);
	return h->status;
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

/* Starts the daemon with its admin endpoint on port 0, plus extra (NULL-terminated). */
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

static dsc_client *
client(const char *token)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.auth_token = token;
	assert_ok(dsc_client_open(&c, D.url, &o));
	return c;
}

/* A TTL instance: the checker leaves it alone, a heartbeat makes it healthy. */
static void
reg(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_kv           meta[] = { { "zone", "a" }, { "version", "1.2" } };
	dsc_registration r      = { .service = service,
		     .endpoint               = endpoint,
		     .metadata               = meta,
		     .n_metadata             = 2,
		     .ttl_ms                 = 600000,
		     .weight                 = 3 };
	assert_ok(dsc_register(c, &r, NULL, NULL));
}

static long long
body_revision(const http *h)
{
	const char *at = strstr(h->body, "\"revision\":");
	return at != NULL ? atoll(at + strlen("\"revision\":")) : -1;
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
test_probes_and_catalog(void **state)
{
	http h;
	(void) state;
	start(NULL);
	assert_int_equal(get("/healthz", NULL, &h), 200);
	assert_int_equal(get("/readyz", NULL, &h), 200);
	assert_non_null(strstr(h.body, "\"ready\":true"));

	dsc_client *c = client(NULL);
	reg(c, "web", "http://127.0.0.1:8001");
	reg(c, "web", "http://127.0.0.1:8002");
	reg(c, "db", "http://127.0.0.1:5432");

	assert_int_equal(get("/v1/services", NULL, &h), 200);
	assert_true(h.revision > 0);
	assert_int_equal(body_revision(&h), h.revision);
	assert_non_null(strstr(h.body, "{\"name\":\"web\",\"instances\":2,\"healthy\":0"));
	assert_non_null(strstr(h.body, "\"name\":\"db\""));

	assert_int_equal(get("/v1/services/web", NULL, &h), 200);
	assert_int_equal(body_revision(&h), h.revision);
	assert_non_null(strstr(h.body, "\"endpoint\":\"http://127.0.0.1:8001\""));
	assert_non_null(strstr(h.body, "\"metadata\":{"));
	assert_non_null(strstr(h.body, "\"zone\":\"a\""));
	assert_non_null(strstr(h.body, "\"version\":\"1.2\""));
	assert_non_null(strstr(h.body, "\"ttl_ms\":600000"));
	assert_non_null(strstr(h.body, "\"weight\":3"));
	assert_non_null(strstr(h.body, "\"health\":\"HEALTH_UNKNOWN\""));

	/* Healthy only: none until a heartbeat. */
	assert_int_equal(get("/v1/services/web?healthy=true", NULL, &h), 200);
	assert_null(strstr(h.body, "8001"));
	assert_ok(dsc_heartbeat(c, "web", "http://127.0.0.1:8001", NULL, NULL));
	assert_int_equal(get("/v1/services/web?healthy=true", NULL, &h), 200);
	assert_non_null(strstr(h.body, "8001"));
	assert_null(strstr(h.body, "8002"));
	assert_int_equal(get("/v1/services?healthy=true", NULL, &h), 200);
	assert_non_null(strstr(h.body, "\"web\""));
	assert_null(strstr(h.body, "\"db\""));

	assert_int_equal(get("/v1/instances", NULL, &h), 200);
	assert_non_null(strstr(h.body, "5432"));
	assert_non_null(strstr(h.body, "8002"));
	assert_int_equal(body_revision(&h), h.revision);

	/* Unknown service: 404 with a JSON error, revision included. */
	assert_int_equal(get("/v1/services/nope", NULL, &h), 404);
	assert_non_null(strstr(h.body, "\"error\":\"service nope is not registered\""));
	assert_true(h.revision > 0);
	dsc_client_close(c);
	stop();
}

static void
test_readyz_waits_for_required(void **state)
{
	http       h;
	th_server *web;
	char       url[64];
	(void) state;
	assert_int_equal(th_start(&web), 0);
	assert_int_equal(th_set(web, "/health", 500), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", th_port(web));
	/* Registered from the environment at start, as --require wants, but failing its checks. */
	setenv("SERVICE_BILLING", url, 1);
	start((const char *[]) { "--require", "billing", "--rise", "1", "--fall", "1",
	    "--health-interval", "0.1", NULL });
	unsetenv("SERVICE_BILLING");
	assert_int_equal(get("/readyz", NULL, &h), 503);
	assert_non_null(strstr(h.body, "billing"));
	assert_int_equal(get("/healthz", NULL, &h), 200); /* alive, though not ready */
	assert_int_equal(th_set(web, "/health", 200), 0);
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while (get("/readyz", NULL, &h) != 200 && tu_now_ms() < end) {
		tu_sleep_ms(20);
	}
	assert_int_equal(h.status, 200);
	assert_non_null(strstr(h.body, "\"missing\":[]"));
	stop();
	th_stop(web);
}

typedef struct waiter {
	char      path[256];
	http      h;
	pthread_t t;
} waiter;

static void *
wait_main(void *arg)
{
	waiter *w = arg;
	get(w->path, NULL, &w->h);
	return NULL;
}

/* The value of one sample line in /metrics, or -1. */
static double
metric(const char *name)
{
	http h;
	if (get("/metrics", NULL, &h) != 200) {
		return -1;
	}
	char pat[160];
	snprintf(pat, sizeof(pat), "\n%s ", name);
	char *at = strstr(h.body, pat);
	return at != NULL ? atof(at + strlen(pat)) : -1;
}

static void
wait_parked(double n)
{
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while (metric("discovery_admin_blocking_queries") != n && tu_now_ms() < end) {
		tu_sleep_ms(5);
	}
	assert_true(metric("discovery_admin_blocking_queries") == n);
}

static void
test_blocking_query_woken_by_register(void **state)
{
	http h;
	(void) state;
	start(NULL);
	dsc_client *c = client(NULL);
	reg(c, "web", "http://127.0.0.1:8001");
	assert_int_equal(get("/v1/services/web", NULL, &h), 200);
	long long rev = h.revision;

	waiter w;
	snprintf(w.path, sizeof(w.path), "/v1/services/web?index=%lld&wait=5m", rev);
	int64_t began = tu_now_ms();
	assert_int_equal(pthread_create(&w.t, NULL, wait_main, &w), 0);
	wait_parked(1);
	reg(c, "web", "http://127.0.0.1:8002");
	pthread_join(w.t, NULL);
	/* Liveness only: far less than the 5 minutes it asked to wait. */
	assert_true(tu_now_ms() - began < TU_LIVENESS_MS);
	assert_int_equal(w.h.status, 200);
	assert_true(w.h.revision > rev);
	assert_non_null(strstr(w.h.body, "8002"));
	/* An index already passed answers at once. */
	snprintf(w.path, sizeof(w.path), "/v1/instances?index=%lld&wait=5m", rev);
	assert_int_equal(get(w.path, NULL, &h), 200);
	assert_true(h.revision > rev);
	dsc_client_close(c);
	stop();
}

static void
test_blocking_query_times_out(void **state)
{
	http h;
	(void) state;
	start(NULL);
	assert_int_equal(get("/v1/services", NULL, &h), 200);
	long long rev = h.revision;
	char      path[128];
	snprintf(path, sizeof(path), "/v1/services?index=%lld&wait=1s", rev);
	assert_int_equal(get(path, NULL, &h), 200);
	assert_int_equal(h.revision, rev); /* nothing changed: the same answer */
	/* A parked query is answered when the server stops. */
	waiter w;
	snprintf(w.path, sizeof(w.path), "/v1/services?index=%lld&wait=5m", rev);
	assert_int_equal(pthread_create(&w.t, NULL, wait_main, &w), 0);
	wait_parked(1);
	stop();
	pthread_join(w.t, NULL);
	assert_int_equal(w.h.status, 200);
}

/* A process's resident memory in kB, from /proc (whose files have no size to read ahead). */
static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	FILE *f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &kb) == 1) {
			break;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return kb;
}

/* A thousand parked queries: the daemon's memory for them, then all woken by one change. */
static void
test_thousand_parked(void **state)
{
	enum { N = 1000 };
	(void) state;
	start(NULL);
	http h0;
	assert_int_equal(get("/v1/services", NULL, &h0), 200);

	long rss0 = rss_kb(D.pid);

	CURLM *m  = curl_multi_init();
	http  *hs = calloc(N, sizeof(*hs));
	CURL **es = calloc(N, sizeof(*es));
	char   path[128];
	snprintf(path, sizeof(path), "/v1/services?index=%lld&wait=5m", h0.revision);
	for (int i = 0; i < N; i++) {
		es[i] = easy(path, NULL, &hs[i]);
		curl_multi_add_handle(m, es[i]);
	}
	int     running = N;
	int64_t end     = tu_now_ms() + TU_LIVENESS_MS;
	while (tu_now_ms() < end && metric("discovery_admin_blocking_queries") < N) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 10, NULL);
	}
	assert_true(metric("discovery_admin_blocking_queries") == N);
	long rss1 = rss_kb(D.pid);
	printf("admin_test: %d parked blocking queries: daemon RSS %ld kB -> %ld kB (%+ld kB, "
	       "%.1f kB each)\n",
	    N, rss0, rss1, rss1 - rss0, (double) (rss1 - rss0) / N);

	dsc_client *c = client(NULL);
	reg(c, "wake", "http://127.0.0.1:8003");
	while (running > 0 && tu_now_ms() < end) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 10, NULL);
	}
	assert_int_equal(running, 0);
	for (int i = 0; i < N; i++) {
		long code = 0;
		curl_easy_getinfo(es[i], CURLINFO_RESPONSE_CODE, &code);
		assert_int_equal(code, 200);
		assert_non_null(strstr(hs[i].body, "\"wake\""));
		curl_multi_remove_handle(m, es[i]);
		easy_done(es[i]);
	}
	curl_multi_cleanup(m);
	free(es);
	free(hs);
	dsc_client_close(c);
	stop();
}

static void
test_auth_reads(void **state)
{
	http h;
	char token_file[256];
	(void) state;
	snprintf(token_file, sizeof(token_file), "%s/token", dir);
	FILE *f = fopen(token_file, "w");
	fputs("s3cret\n", f);
	fclose(f);
	chmod(token_file, 0600);
	start((const char *[]) { "--token-file", token_file, "--auth-reads", NULL });
	assert_int_equal(get("/v1/services", NULL, &h), 401);
	assert_int_equal(get("/v1/services", "wrong", &h), 403);
	assert_int_equal(get("/v1/services", "s3cret", &h), 200);
	assert_int_equal(get("/v1/instances", NULL, &h), 401);
	assert_int_equal(get("/metrics", NULL, &h), 401);
	assert_int_equal(get("/metrics", "s3cret", &h), 200);
	/* Probes never need it. */
	assert_int_equal(get("/healthz", NULL, &h), 200);
	assert_int_equal(get("/readyz", NULL, &h), 200);
	stop();
	unlink(token_file);
}

static void
test_bad_requests(void **state)
{
	http h;
	(void) state;
	start(NULL);
	assert_int_equal(get("/v1/services/Not%20a%20name", NULL, &h), 400);
	assert_int_equal(get("/v1/services/a/b", NULL, &h), 404);
	assert_int_equal(get("/v1/services?index=abc", NULL, &h), 400);
	assert_int_equal(get("/v1/services?index=1&wait=forever", NULL, &h), 400);
	assert_int_equal(get("/v1/services?healthy=maybe", NULL, &h), 400);
	assert_int_equal(get("/nothing-here", NULL, &h), 404);

	char *lng = malloc(6000);
	strcpy(lng, "/v1/services?x=");
	memset(lng + strlen(lng), 'a', 5000);
	lng[5015] = 0;
	long st   = get(lng, NULL, &h);
	assert_true(st >= 400 && st < 500);
	free(lng);

	/* A write method: refused, not served. */
	CURL *e = easy("/v1/services", NULL, &h);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h.status);
	easy_done(e);
	assert_int_equal(h.status, 405);

	/* Headers past nng's limit: the connection is refused or closed, never a hang. */
	e         = easy("/healthz", NULL, &h);
	char *big = malloc(20000);
	strcpy(big, "X-Big: ");
	memset(big + 7, 'b', 19000);
	big[19007]             = 0;
	struct curl_slist *hdr = curl_slist_append(NULL, big);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h.status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdr);
	free(big);
	assert_true(rc != CURLE_OK || (h.status >= 400 && h.status < 500));

	/* Still serving. */
	assert_int_equal(get("/healthz", NULL, &h), 200);
	stop();
}

/* https:// serves TLS with the daemon's --tls-cert and --tls-key. */
static void
test_https(void **state)
{
	char cert[256], key[256], subj[] = "/CN=127.0.0.1", out[4096], err[4096];
	http h;
	(void) state;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	const char *gen[] = { "/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
		"-keyout", key, "-out", cert, "-days", "2", "-subj", subj, "-addext",
		"subjectAltName=IP:127.0.0.1", NULL };
	assert_int_equal(td_run(gen, out, sizeof(out), err, sizeof(err)), 0);
	chmod(key, 0600);
	const char *args[]
	    = { "--admin", "https://127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, NULL };
	assert_int_equal(td_daemon_start(&D, args), 0);
	assert_int_equal(learn_admin(), 0);
	assert_int_equal(strncmp(admin, "https://", 8), 0);
	CURL *e = easy("/v1/services", NULL, &h);
	curl_easy_setopt(e, CURLOPT_CAINFO, cert);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h.status);
	easy_done(e);
	assert_int_equal(h.status, 200);
	assert_true(h.revision >= 0);
	stop();
}

/* Saves a scrape for the Python parser. */
static void
scrape(const char *path)
{
	http h;
	assert_int_equal(get("/metrics", NULL, &h), 200);
	FILE *f = fopen(path, "w");
	fwrite(h.body, 1, h.len, f);
	fclose(f);
}

static void
test_metrics_move(void **state)
{
	char before[256], after[256], out[8192], err[8192];
	(void) state;
	snprintf(before, sizeof(before), "%s/before.prom", dir);
	snprintf(after, sizeof(after), "%s/after.prom", dir);
	start(NULL);
	scrape(before);
	dsc_client   *c = client(NULL);
	dsc_instance *in;
	reg(c, "web", "http://127.0.0.1:8001");
	for (int i = 0; i < 3; i++) {
		assert_ok(dsc_resolve(c, "web", false, &in, NULL));
		dsc_instance_free(in);
	}
	assert_int_equal(dsc_resolve(c, "nope", false, &in, NULL), DSC_ENOTFOUND);
	scrape(after);
	const char *argv[] = { ADMIN_TEST_PYTHON, ADMIN_METRICS_SCRIPT, before, after, NULL };
	int         rv     = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "%s%s", out, err);
	}
	assert_int_equal(rv, 0);
	dsc_client_close(c);
	stop();
}

static int
group_setup(void **state)
{
	struct rlimit rl;
	/* A thousand parked queries need a thousand descriptors here and in the daemon. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (tu_mkdtemp(dir, sizeof(dir), "admin-test") != 0) {
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
		cmocka_unit_test_teardown(test_probes_and_catalog, teardown),
		cmocka_unit_test_teardown(test_readyz_waits_for_required, teardown),
		cmocka_unit_test_teardown(test_blocking_query_woken_by_register, teardown),
		cmocka_unit_test_teardown(test_blocking_query_times_out, teardown),
		cmocka_unit_test_teardown(test_thousand_parked, teardown),
		cmocka_unit_test_teardown(test_auth_reads, teardown),
		cmocka_unit_test_teardown(test_bad_requests, teardown),
		cmocka_unit_test_teardown(test_https, teardown),
		cmocka_unit_test_teardown(test_metrics_move, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
