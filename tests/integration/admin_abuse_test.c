/*
 * The admin endpoint against hostile HTTP clients, on the real daemon: a
 * flood of idle connections, request heads sent halfway and left, bytes
 * that are not HTTP (or not this HTTP), and requests that try to smuggle a
 * body into a GET. After each: the endpoint still answers its probes, the
 * REQ/REP contract still serves, and the daemon's memory stayed bounded.
 *
 * What nng 1.5.2's HTTP server itself bounds (and what it does not) is in
 * docs/operations.md: a request head over 8 KiB closes the connection; it
 * has no cap on connections and no idle timeout, so an idle connection
 * costs a descriptor and a few KiB until the client closes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/testutil.h"

#define IDLE_CONNS 1000 /* bounded: well under the descriptor limits raised below */
#define SLOW_CONNS 64

static td_daemon D;
static int       admin_port;

static long
rss_kib(void)
{
	char  path[64], line[256];
	long  kib = -1;
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/status", (int) D.pid);
	if ((f = fopen(path, "r")) == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = atol(line + 6);
		}
	}
	fclose(f);
	return kib;
}

/* A TCP connection to the admin port, blocking, with a liveness bound on reads. */
static int
dial(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) admin_port) };
	sa.sin_addr.s_addr    = htonl(INADDR_LOOPBACK);
	int fd                = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	struct timeval tv = { .tv_sec = TU_LIVENESS_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k <= 0) {
			return -1;
		}
		c += k;
		n -= (size_t) k;
	}
	return 0;
}

/*
 * Sends raw bytes on a fresh connection and reads what comes back until the
 * server closes or a full status line arrived. Returns the HTTP status, 0
 * when the connection was closed with no answer, -1 when nothing happened
 * within the liveness bound (a hang).
 */
static int
exchange(const void *bytes, size_t n)
{
	int fd = dial();
	assert_true(fd >= 0);
	if (send_all(fd, bytes, n) != 0) {
		close(fd);
		return 0; /* refused mid-send: closed */
	}
	char    buf[512];
	size_t  got = 0;
	int     st  = -1;
	ssize_t k;
	while (got < sizeof(buf) - 1 && (k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
		got += (size_t) k;
		buf[got] = 0;
		if (strstr(buf, "\r\n") != NULL) {
			break;
		}
	}
	if (got == 0) {
		st = errno == EAGAIN || errno == EWOULDBLOCK ? -1 : 0;
	} else if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1) {
		st = 0;
	}
	close(fd);
	return st;
}

static int
exchange_text(const char *text)
{
	return exchange(text, strlen(text));
}

/* The endpoint and the contract both still serve. */
static void
assert_serving(void)
{
	assert_int_equal(exchange_text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
	assert_int_equal(
	    exchange_text("GET /v1/services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
	    200);
	dsc_client *c;
	assert_ok(dsc_client_open(&c, D.url, NULL));
	dsc_registration r
	    = { .service = "abuse-web", .endpoint = "http://127.0.0.1:1/x", .ttl_ms = 600000 };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	dsc_instance *in = NULL;
	assert_ok(dsc_resolve(c, "abuse-web", false, &in, NULL));
	dsc_instance_free(in);
	dsc_client_close(c);
}

static int
setup(void **state)
{
	(void) state;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max; /* the daemon inherits it, and raises its own anyway */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	const char *args[] = { "--admin", "http://127.0.0.1:0", NULL };
	assert_int_equal(td_daemon_start(&D, args), 0);
	const char *at = strstr(D.ready, "admin http://127.0.0.1:");
	assert_non_null(at);
	admin_port = atoi(at + strlen("admin http://127.0.0.1:"));
	assert_true(admin_port > 0);
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	if (D.pid > 0) {
		assert_int_equal(td_daemon_stop(&D), 0);
	}
	return 0;
}

/* A thousand connections that never send a byte: served alongside, memory bounded. */
static void
test_idle_flood(void **state)
{
	(void) state;
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < IDLE_CONNS + 64) {
		skip(); /* this test process cannot hold them; the daemon is not at fault */
	}
	long rss0 = rss_kib();
	int *fds  = calloc(IDLE_CONNS, sizeof(*fds));
	int  n    = 0;
	for (; n < IDLE_CONNS; n++) {
		if ((fds[n] = dial()) < 0) {
			break;
		}
	}
	assert_int_equal(n, IDLE_CONNS);
	assert_serving();
	long grown = rss_kib() - rss0;
	print_message("%d idle admin connections: daemon RSS +%ld KiB\n", n, grown);
	assert_true(grown < 64 * 1024); /* about 8 KiB each in nng's buffers; bounded by count */
	for (int i = 0; i < n; i++) {
		close(fds[i]);
	}
	free(fds);
	assert_serving();
}

/* Request heads begun and left: other requests are served meanwhile. */
static void
test_stalled_heads(void **state)
{
	(void) state;
	int fds[SLOW_CONNS];
	for (int i = 0; i < SLOW_CONNS; i++) {
		fds[i] = dial();
		assert_true(fds[i] >= 0);
		assert_int_equal(
		    send_all(fds[i], "GET /v1/instances HTTP/1.1\r\nHost: x\r\nX-Slow: ", 45), 0);
	}
	assert_serving();
	for (int i = 0; i < SLOW_CONNS; i++) {
		close(fds[i]);
	}
	assert_serving();
}

/* Bytes that are not HTTP/1.1 as the endpoint serves it: refused or closed, never a hang. */
static void
test_not_http(void **state)
{
	(void) state;
	static const unsigned char tls_hello[] = { 0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00,
		0x2b, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x02, 0x00, 0x2f, 0x01, 0x00 };
	static const unsigned char nul_and_high[] = { 'G', 'E', 'T', ' ', '/', 0, 0xff, 0xfe, ' ',
		'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n', '\r', '\n' };
	const char                *texts[]        = {
		                      "GET /\r\n\r\n",                     /* HTTP/0.9 */
		                      "GET / HTTP/9.9\r\nHost: x\r\n\r\n", /* a version nobody speaks */
		                      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
		                      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
		                      "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: "
		                                            "chunked\r\n\r\n0\r\n\r\nGET /v1/snapshot HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		                      /* %00 inside the path, not at its end: nng 1.5.2 over-reads there (docs/admin.md).
		                       */
		                      "GET /v1/services/%00x HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "GET /v1/services/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "GET /v1/services/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "GET /v1/services?index=18446744073709551616&wait=1s HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "GET /v1/services?index=1&wait=-1s HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "GET /v1/services?index=1&wait=99999999999999h HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "GET /v1/services?&&&=&= HTTP/1.1\r\nHost: x\r\n\r\n",
		                      "\r\n\r\n\r\n\r\n",
		                      "BREW /healthz HTCPCP/1.0\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int st = exchange_text(texts[i]);
		print_message("%zu: status %d\n", i, st);
		/* A refusal (4xx/5xx) or a close; never a hang. Two are still valid GETs. */
		bool valid_get
		    = strstr(texts[i], "chunked") != NULL || strstr(texts[i], "&&&") != NULL;
		assert_true(st == 0 || st >= 400 || (valid_get && st == 200));
	}
	assert_true(exchange(tls_hello, sizeof(tls_hello)) >= 0);
	assert_true(exchange(nul_and_high, sizeof(nul_and_high)) >= 0);
	assert_serving();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_flood),
		cmocka_unit_test(test_stalled_heads),
		cmocka_unit_test(test_not_http),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
