/* The test HTTP server (tests/support/httpd.c), driven with libcurl and raw sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/httpd.h"
#include "support/testutil.h"

#define assert_zero_errno(rv)                                             \
	do {                                                              \
		int rv_ = (rv);                                           \
		if (rv_ != 0) {                                           \
			fail_msg("%s: %d (%s)", #rv, rv_, strerror(rv_)); \
		}                                                         \
	} while (0)

#define assert_curl_ok(rc)                                                                \
	do {                                                                              \
		CURLcode rc_ = (rc);                                                      \
		if (rc_ != CURLE_OK) {                                                    \
			fail_msg("%s: %d (%s)", #rc, (int) rc_, curl_easy_strerror(rc_)); \
		}                                                                         \
	} while (0)

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps the body out of stdout. */
static size_t
drop_body(char *p, size_t size, size_t n, void *arg)
{
	(void) p;
	(void) arg;
	return size * n;
}

/* A handle for http://127.0.0.1:PORT; proxies from the environment are ignored. */
static CURL *
handle(void)
{
	CURL *h = curl_easy_init();

	assert_non_null(h);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop_body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	return h;
}

/* GET path on the handle; returns the curl result and the status in *status. */
static CURLcode
get_on(CURL *h, const th_server *s, const char *path, long *status)
{
	char     url[256];
	CURLcode rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", th_port(s), path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	*status = 0;
	rc      = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return rc;
}

/* GET path on a fresh handle and returns the status. */
static long
get(const th_server *s, const char *path)
{
	CURL *h = handle();
	long  status;

	assert_curl_ok(get_on(h, s, path, &status));
	curl_easy_cleanup(h);
	return status;
}

/* A raw client socket connected to the server. */
static int
raw_connect(const th_server *s)
{
	struct sockaddr_in sa;
	int                fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port        = htons((uint16_t) th_port(s));
	assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	return fd;
}

static void
raw_send(int fd, const char *text)
{
	assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t) strlen(text));
}

/*
 * Reads what arrives within ms (until the peer closes, or quiet for ms after
 * the first bytes). Returns the byte count; 0 means closed or nothing.
 */
static size_t
raw_read(int fd, char *buf, size_t len, int ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, ms) <= 0) {
			break;
		}
		ssize_t r = recv(fd, buf + n, len - n - 1, 0);
		if (r <= 0) {
			break;
		}
		n += (size_t) r;
		ms = 50;
	}
	buf[n] = 0;
	return n;
}

/* Waits (bounded) until path has at least want hits. */
static void
wait_hits(th_server *s, const char *path, int want)
{
	for (int i = 0; i < 500 && th_hits(s, path) < want; i++) {
		tu_sleep_ms(10);
	}
	assert_int_equal(th_hits(s, path), want);
}

/* th_stop, which must be prompt whatever the connections are doing. */
static void
stop_promptly(th_server *s)
{
	int64_t t0 = now_ms();

	th_stop(s);
	int64_t took = now_ms() - t0;
	if (took
	    >= 1000 * tu_slowdown()) { /* promptly, on a loaded machine or under valgrind too */
		fail_msg("th_stop took %lld ms", (long long) took);
	}
}

/* ---- group and per-test setup: a fresh server for every test ---- */

static int
setup(void **state)
{
	th_server *s;

	if (th_start(&s) != 0) {
		return -1;
	}
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	stop_promptly(*state);
	return 0;
}

/* ---- tests ---- */

static void
test_port_is_ephemeral(void **state)
{
	th_server *s = *state, *t;

	assert_true(th_port(s) > 0 && th_port(s) < 65536);
	assert_zero_errno(th_start(&t));
	assert_int_not_equal(th_port(s), th_port(t));
	th_stop(t);
	th_stop(NULL);
}

static void
test_status_200(void **state)
{
	th_server *s = *state;

	assert_zero_errno(th_set(s, "/health", 200));
	assert_int_equal(get(s, "/health"), 200);
}

static void
test_status_500(void **state)
{
	th_server *s = *state;

	assert_zero_errno(th_set(s, "/health", 500));
	assert_int_equal(get(s, "/health"), 500);
	/* Changed at run time. */
	assert_zero_errno(th_set(s, "/health", 503));
	assert_int_equal(get(s, "/health"), 503);
	assert_zero_errno(th_set(s, "/health", 200));
	assert_int_equal(get(s, "/health"), 200);
}

static void
test_unknown_path_404(void **state)
{
	th_server *s = *state;

	assert_zero_errno(th_set(s, "/health", 200));
	assert_int_equal(get(s, "/nothing"), 404);
	assert_int_equal(get(s, "/health/more"), 404);
	assert_int_equal(th_hits(s, "/nothing"), 1);
}

static void
test_query_string_ignored(void **state)
{
	th_server *s = *state;

	assert_zero_errno(th_set(s, "/health", 204));
	assert_int_equal(get(s, "/health?probe=1&x=y"), 204);
	assert_int_equal(get(s, "/health"), 204);
	assert_int_equal(th_hits(s, "/health"), 2);
	assert_int_equal(th_hits(s, "/health?other"), 2);
}

static void
test_redirect_not_followed(void **state)
{
	th_server *s = *state;
	CURL      *h = handle();
	long       status;
	char      *location = NULL;

	assert_zero_errno(th_set(s, "/target", 200));
	assert_zero_errno(th_set_redirect(s, "/moved", "/target"));
	assert_curl_ok(get_on(h, s, "/moved", &status));
	assert_int_equal(status, 302);
	curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location);
	assert_non_null(location);
	assert_non_null(strstr(location, "/target"));
	curl_easy_cleanup(h);
	assert_int_equal(th_hits(s, "/moved"), 1);
	assert_int_equal(th_hits(s, "/target"), 0);

	/* th_set replaces the redirect. */
	assert_zero_errno(th_set(s, "/moved", 200));
	assert_int_equal(get(s, "/moved"), 200);
}

static void
test_hits(void **state)
{
	th_server *s = *state;

	assert_int_equal(th_hits(s, "/a"), 0);
	assert_int_equal(th_total_hits(s), 0);
	assert_zero_errno(th_set(s, "/a", 200));
	assert_int_equal(th_hits(s, "/a"), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(s, "/a"), 200);
	}
	assert_int_equal(get(s, "/b"), 404);
	assert_int_equal(th_hits(s, "/a"), 3);
	assert_int_equal(th_hits(s, "/b"), 1);
	assert_int_equal(th_hits(s, "/c"), 0);
	assert_int_equal(th_total_hits(s), 4);
}

static void
test_bad_arguments(void **state)
{
	th_server *s = *state;

	assert_int_equal(th_set(s, "health", 200), EINVAL);
	assert_int_equal(th_set(s, NULL, 200), EINVAL);
	assert_int_equal(th_set(s, "/health", 0), EINVAL);
	assert_int_equal(th_set_redirect(s, "/r", "/x\r\nInjected: yes"), EINVAL);
	assert_int_equal(th_set_hang(s, "", true), EINVAL);
	assert_int_equal(th_hits(s, NULL), 0);
}

static void
test_keep_alive(void **state)
{
	th_server *s = *state;
	CURL      *h = handle();
	long       status, connects = -1;

	assert_zero_errno(th_set(s, "/health", 200));
	assert_zero_errno(th_set(s, "/other", 500));
	assert_curl_ok(get_on(h, s, "/health", &status));
	assert_int_equal(status, 200);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 1);

	/* Same handle: the connection is reused, whatever the status. */
	assert_curl_ok(get_on(h, s, "/other", &status));
	assert_int_equal(status, 500);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 0);
	assert_curl_ok(get_on(h, s, "/health", &status));
	assert_int_equal(status, 200);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 0);
	curl_easy_cleanup(h);
	assert_int_equal(th_hits(s, "/health"), 2);
}

static void
test_connection_close_honoured(void **state)
{
	th_server         *s    = *state;
	CURL              *h    = handle();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Connection: close");
	long               status, connects = -1;

	assert_zero_errno(th_set(s, "/health", 200));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	assert_curl_ok(get_on(h, s, "/health", &status));
	assert_int_equal(status, 200);
	assert_curl_ok(get_on(h, s, "/health", &status));
	assert_int_equal(status, 200);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 1);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);

	/* On the wire: the answer says so, and the server closes. */
	char buf[1024];
	int  fd = raw_connect(s);
	raw_send(fd, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	assert_true(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(buf, "\r\nConnection: close\r\n"));
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
}

static void
test_pipelined_requests(void **state)
{
	th_server *s = *state;
	char       buf[2048];
	int        fd = raw_connect(s);

	assert_zero_errno(th_set(s, "/a", 200));
	assert_zero_errno(th_set(s, "/b", 500));
	raw_send(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	wait_hits(s, "/b", 1);
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	const char *a = strstr(buf, "HTTP/1.1 200 OK\r\n");
	const char *b = strstr(buf, "HTTP/1.1 500 Internal Server Error\r\n");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b);
	assert_non_null(strstr(buf, "Content-Length: "));
	assert_non_null(strstr(buf, "Connection: keep-alive\r\n"));
	close(fd);
}

static void
test_malformed_and_oversized(void **state)
{
	th_server *s = *state;
	char       buf[1024], big[8192];
	int        fd;

	fd = raw_connect(s);
	raw_send(fd, "hello\r\n\r\n");
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	assert_true(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
	close(fd);

	fd = raw_connect(s);
	/* Exactly the 8 KiB bound with no end of head: all read, then refused. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memcpy(big, "GET /x HTTP/1.1\r\nX-Big: ", 24);
	raw_send(fd, big);
	raw_send(fd, "a");
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	assert_true(strncmp(buf, "HTTP/1.1 431 ", 13) == 0);
	close(fd);
	assert_int_equal(th_total_hits(s), 0);
}

static void
test_hang_times_out(void **state)
{
	th_server *s = *state;
	CURL      *h = handle();
	long       status;
	int64_t    t0;

	assert_zero_errno(th_set(s, "/slow", 200));
	assert_zero_errno(th_set_hang(s, "/slow", true));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 300L);
	t0 = now_ms();
	assert_int_equal(get_on(h, s, "/slow", &status), CURLE_OPERATION_TIMEDOUT);
	assert_true(now_ms() - t0 < 3000);
	assert_int_equal(th_hits(s, "/slow"), 1);
	curl_easy_cleanup(h);

	/* Other paths are not held up. */
	assert_int_equal(get(s, "/elsewhere"), 404);
}

static void
test_unhang_answers(void **state)
{
	th_server *s = *state;
	char       buf[1024];
	int        fd = raw_connect(s);

	assert_zero_errno(th_set(s, "/slow", 503));
	assert_zero_errno(th_set_hang(s, "/slow", true));
	raw_send(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
	wait_hits(s, "/slow", 1);
	assert_int_equal(raw_read(fd, buf, sizeof(buf), 200), 0);
	assert_zero_errno(th_set_hang(s, "/slow", false));
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	assert_true(strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
	close(fd);
}

static void
test_stop_with_hanging_connections(void **state)
{
	th_server *s = *state;
	int        fds[4];
	char       buf[64];

	/* A hanging request, a half-sent request, an idle keep-alive and a fresh connection. */
	assert_zero_errno(th_set_hang(s, "/slow", true));
	fds[0] = raw_connect(s);
	raw_send(fds[0], "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
	fds[1] = raw_connect(s);
	raw_send(fds[1], "GET /slow HTTP/1.1\r\nHo");
	assert_zero_errno(th_set(s, "/ok", 200));
	fds[2] = raw_connect(s);
	raw_send(fds[2], "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(raw_read(fds[2], buf, sizeof(buf), 2000) > 0);
	fds[3] = raw_connect(s);
	wait_hits(s, "/slow", 1);

	stop_promptly(s);
	*state = NULL;
	/* Every connection was closed without an answer. */
	assert_int_equal(raw_read(fds[0], buf, sizeof(buf), 2000), 0);
	for (int i = 0; i < 4; i++) {
		close(fds[i]);
	}
}

static void
test_connection_cap(void **state)
{
	enum { N = TH_MAX_CONNS + 8 };
	th_server *s = *state;
	int        fds[N];
	char       buf[64];
	int        closed = 0;

	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(s);
	}
	/*
	 * The connections over the cap are closed by the server at once: once
	 * it has accepted the ones before them, which takes seconds under
	 * valgrind (a thread each), hence a liveness bound.
	 */
	for (int i = 0; i < N; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		if (poll(&p, 1, i < TH_MAX_CONNS ? 0 : TU_LIVENESS_MS) > 0
		    && recv(fds[i], buf, 1, 0) == 0) {
			closed++;
		}
	}
	assert_int_equal(closed, N - TH_MAX_CONNS);

	/* Once some are released, new connections are served again. */
	for (int i = 0; i < N; i++) {
		close(fds[i]);
	}
	assert_zero_errno(th_set(s, "/ok", 200));
	for (int64_t start = tu_now_ms(); tu_now_ms() - start < TU_LIVENESS_MS;) {
		CURL *h = handle();
		long  status;
		if (get_on(h, s, "/ok", &status) == CURLE_OK && status == 200) {
			curl_easy_cleanup(h);
			return;
		}
		curl_easy_cleanup(h);
		tu_sleep_ms(10);
	}
	fail_msg("no answer after the connections were closed");
}

static int
teardown_maybe_stopped(void **state)
{
	if (*state != NULL) {
		stop_promptly(*state);
	}
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_port_is_ephemeral, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_200, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_path_404, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_string_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_close_honoured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_and_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hang_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unhang_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_with_hanging_connections, setup, teardown_maybe_stopped),
		cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
