/*
 * discoveryctl end to end: the real CLI against one real discoveryd. Each
 * test uses service names of its own, so tests stay independent although
 * they share the daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

#define MAX_ARGV 32

/* A server URL that refuses connections: a port the group holds (tu_dead_url). */
static char unreachable[64];
static int  unreachable_fd = -1;
#define UNREACHABLE unreachable

/* What one run of discoveryctl left behind. */
typedef struct run {
	int  status;
	char out[16384];
	char err[4096];
} run;

/*
 * Runs discoveryctl with "--server server" first (none when server is NULL)
 * and then the NULL-terminated arguments. Returns the exit status.
 */
static int
ctl_run(run *r, const char *server, ...)
{
	const char *argv[MAX_ARGV];
	size_t      n = 0;
	const char *a;
	va_list     ap;

	argv[n++] = DISCOVERYCTL_PATH;
	if (server != NULL) {
		argv[n++] = "--server";
		argv[n++] = server;
	}
	va_start(ap, server);
	while ((a = va_arg(ap, const char *)) != NULL) {
		assert_true(n < MAX_ARGV - 1);
		argv[n++] = a;
	}
	va_end(ap);
	argv[n]   = NULL;
	r->status = td_run(argv, r->out, sizeof(r->out), r->err, sizeof(r->err));
	return r->status;
}

/* discoveryctl against the group's daemon. */
#define CTL(r, state, ...) ctl_run((r), ((td_daemon *) *(state))->url, __VA_ARGS__, NULL)

/*
 * A --timeout of s seconds for a call that must be answered, stretched by
 * tu_slowdown(), written as discoveryctl prints it (%g) into buf.
 */
static void
timeout_arg(char *buf, size_t len, double s)
{
	snprintf(buf, len, "%g", s * tu_slowdown());
}

/* Fails with both streams shown, which is what one needs to see when it fails. */
#define assert_exit(r, want)                                                                      \
	do {                                                                                      \
		if ((r)->status != (want)) {                                                      \
			fail_msg("exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s", (r)->status, \
			    (want), (r)->out, (r)->err);                                          \
		}                                                                                 \
	} while (0)

#define assert_contains(hay, needle)                                           \
	do {                                                                   \
		if (strstr((hay), (needle)) == NULL) {                         \
			fail_msg("\"%s\" not found in:\n%s", (needle), (hay)); \
		}                                                              \
	} while (0)

/* A failure is one "discoveryctl: ..." line on stderr and nothing on stdout. */
static void
assert_one_error_line(const run *r, const char *needle)
{
	const char *nl = strchr(r->err, '\n');

	if (strncmp(r->err, "discoveryctl: ", 14) != 0 || nl == NULL || nl[1] != 0) {
		fail_msg("want one \"discoveryctl: ...\" line on stderr, got:\n%s", r->err);
	}
	assert_contains(r->err, needle);
	assert_string_equal(r->out, "");
}

/* The whole of a file, NUL-terminated, truncated to len - 1 bytes; "" if unreadable. */
static void
slurp(const char *path, char *buf, size_t len)
{
	FILE  *f = fopen(path, "r");
	size_t n = f != NULL ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = 0;
	if (f != NULL) {
		fclose(f);
	}
}

/* ---- discoveryctl in the background, for watch ---- */

/* A running discoveryctl whose stdout and stderr go to files. */
typedef struct bg {
	pid_t pid;    /* 0 once reaped */
	int   status; /* once reaped: the exit status, or -1 if killed by a signal */
	char  out_path[64];
	char  err_path[64];
} bg;

/* Starts discoveryctl with the NULL-terminated arguments after argv[0]. */
static void
bg_start(bg *b, const char *const *args)
{
	const char *argv[MAX_ARGV];
	size_t      n = 0;
	int         ofd, efd;

	argv[n++] = DISCOVERYCTL_PATH;
	for (size_t i = 0; args[i] != NULL; i++) {
		assert_true(n < MAX_ARGV - 1);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	const char *cmd[TD_MAX_COMMAND];
	char        words[1024];
	assert_int_equal(td_command(cmd, TD_MAX_COMMAND, argv, words, sizeof(words)), 0);
	snprintf(b->out_path, sizeof(b->out_path), "/tmp/ctl-bg-out-XXXXXX");
	snprintf(b->err_path, sizeof(b->err_path), "/tmp/ctl-bg-err-XXXXXX");
	ofd = mkstemp(b->out_path);
	efd = mkstemp(b->err_path);
	assert_true(ofd >= 0 && efd >= 0);
	b->pid = fork();
	assert_true(b->pid >= 0);
	if (b->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(ofd, 1);
		dup2(efd, 2);
		if (devnull >= 0) {
			dup2(devnull, 0);
		}
		execvp(cmd[0], (char *const *) cmd);
		_exit(127);
	}
	close(ofd);
	close(efd);
}

/* True once the child has exited (and been reaped into b->status). */
static bool
bg_exited(bg *b)
{
	int st;

	if (b->pid <= 0) {
		return true;
	}
	if (waitpid(b->pid, &st, WNOHANG) != b->pid) {
		return false;
	}
	b->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	b->pid    = 0;
	return true;
}

/*
 * Waits up to ms (times tu_slowdown()) for the child to exit (killing it
 * after that), reads what it printed into out and err, removes the files and
 * returns the exit status (-1 when it had to be killed).
 */
static int
bg_finish(bg *b, int ms, char *out, size_t out_len, char *err, size_t err_len)
{
	for (int waited = 0; !bg_exited(b) && waited < ms * tu_slowdown(); waited += 10) {
		tu_sleep_ms(10);
	}
	if (b->pid > 0) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
		b->pid    = 0;
		b->status = -1;
	}
	slurp(b->out_path, out, out_len);
	slurp(b->err_path, err, err_len);
	unlink(b->out_path);
	unlink(b->err_path);
	return b->status;
}

/* Waits (bounded: 10 s times tu_slowdown()) until the child's stdout contains text. */
static void
bg_wait_output(bg *b, const char *text)
{
	char out[16384];

	for (int i = 0; i < 1000 * tu_slowdown(); i++) {
		slurp(b->out_path, out, sizeof(out));
		if (strstr(out, text) != NULL) {
			return;
		}
		tu_sleep_ms(10);
	}
	fail_msg("\"%s\" not printed by the watch within %d s; it printed:\n%s", text,
	    10 * tu_slowdown(), out);
}

/* The number of lines in s. */
static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != 0; s++) {
		n += *s == '\n';
	}
	return n;
}

/* Checks that line starts with an event time, "YYYY-MM-DDTHH:MM:SS.mmmZ ". */
static void
assert_event_time(const char *line)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		bool ok = shape[i] == 'd' ? line[i] >= '0' && line[i] <= '9' : line[i] == shape[i];
		if (!ok) {
			fail_msg("no event time at the start of: %s", line);
		}
	}
}

/*
 * Registers service at a new endpoint (long TTL: no checks, no later events)
 * every 100 ms until the watch exits, as a bound of 10 s. Registering first
 * the decoy service, when given, which the watch must not print.
 */
static void
register_until_exit(
    void **state, bg *b, const char *service, const char *decoy, char *out, size_t out_len)
{
	char err[4096], ep[64];
	int  status;
	run  r;

	for (int i = 0; i < 100 && !bg_exited(b); i++) {
		if (decoy != NULL) {
			snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 20000 + i);
			CTL(&r, state, "register", decoy, ep, "--ttl-ms", "600000");
			assert_exit(&r, 0);
		}
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 21000 + i);
		CTL(&r, state, "register", service, ep, "--ttl-ms", "600000");
		assert_exit(&r, 0);
		tu_sleep_ms(100);
	}
	status = bg_finish(b, 5000, out, out_len, err, sizeof(err));
	if (status != 0) {
		fail_msg("watch exited %d\n--- stdout:\n%s--- stderr:\n%s", status, out, err);
	}
	assert_string_equal(err, "");
}

/* ---- group setup: one daemon for every test ---- */

/*
 * The group's daemon, and what a watch test started, so that the test's
 * teardown cleans up after a failed assertion too.
 */
typedef struct fixture {
	td_daemon  d;     /* first: tests take *state as a td_daemon */
	bg         watch; /* a background discoveryctl; pid 0 when none */
	td_daemon  own;   /* a daemon of the test's own; pid 0 when none */
	th_server *http;  /* health endpoints; NULL when none */
} fixture;

static int
group_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (tu_dead_url(unreachable, sizeof(unreachable), "tcp", &unreachable_fd) != 0) {
		free(f);
		return -1;
	}
	if (f == NULL || td_daemon_start(&f->d, NULL) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	fixture *f  = *state;
	int      rv = td_daemon_stop(&f->d);

	free(f);
	close(unreachable_fd);
	return rv == 0 ? 0 : -1;
}

/* Ends whatever a watch test left running; fails if its own daemon did not stop cleanly. */
static int
watch_teardown(void **state)
{
	fixture *f  = *state;
	int      rv = 0;
	char     out[64], err[64];

	if (f->watch.pid > 0) {
		bg_finish(&f->watch, 0, out, sizeof(out), err, sizeof(err));
	}
	if (f->own.pid > 0) {
		rv = td_daemon_stop(&f->own);
	}
	th_stop(f->http);
	f->http = NULL;
	return rv == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void
test_register_then_resolve(void **state)
{
	run r;

	CTL(&r, state, "register", "ctl-basic", "http://127.0.0.1:9101");
	assert_exit(&r, 0);
	assert_contains(r.out, "endpoint:      http://127.0.0.1:9101\n");
	assert_contains(r.out, "health:        unknown\n");

	CTL(&r, state, "resolve", "ctl-basic");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "http://127.0.0.1:9101\n");
	assert_string_equal(r.err, "");
}

static void
test_name_is_normalized(void **state)
{
	run r;

	CTL(&r, state, "register", "Ctl_Memory_Service", "http://127.0.0.1:9201");
	assert_exit(&r, 0);
	assert_contains(r.out, "service:       ctl-memory-service\n");

	CTL(&r, state, "resolve", "ctl-memory-service");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "http://127.0.0.1:9201\n");
}

static void
test_resolve_json(void **state)
{
	run r;

	/* A TTL: the server's checker, which checks at once, leaves the instance alone. */
	CTL(&r, state, "register", "ctl-json", "http://127.0.0.1:9301", "--weight", "3", "--ttl-ms",
	    "600000");
	assert_exit(&r, 0);

	/* Global options after the command, as well as before it. */
	CTL(&r, state, "resolve", "ctl-json", "--json");
	assert_exit(&r, 0);
	assert_true(r.out[0] == '{');
	assert_contains(r.out, "\"service\":\"ctl-json\"");
	assert_contains(r.out, "\"endpoint\":\"http://127.0.0.1:9301\"");
	assert_contains(r.out, "\"health\":\"unknown\"");
	assert_contains(r.out, "\"metadata\":{}");
	assert_contains(r.out, "\"health_path\":\"/health\"");
	assert_contains(r.out, "\"weight\":3");
	assert_contains(r.out, "\"ttl_ms\":600000");
	assert_contains(r.out, "\"last_check_ms\":0");
	assert_contains(r.out, "\"last_error\":\"\"");
	assert_string_equal(r.out + strlen(r.out) - 2, "}\n");
	/* One object: exactly one line. */
	assert_ptr_equal(strchr(r.out, '\n'), r.out + strlen(r.out) - 1);
}

static void
test_server_flag_forms(void **state)
{
	const td_daemon *d = *state;
	char             flag[160], t[32];
	run              r;

	snprintf(flag, sizeof(flag), "--server=%s", d->url);
	ctl_run(&r, NULL, "register", "ctl-flags", "http://127.0.0.1:9351", flag, NULL);
	assert_exit(&r, 0);
	ctl_run(&r, NULL, "--json", "--timeout=2.5", flag, "resolve", "ctl-flags", NULL);
	assert_exit(&r, 0);
	assert_contains(r.out, "\"endpoint\":\"http://127.0.0.1:9351\"");
	timeout_arg(t, sizeof(t), 0.75);
	ctl_run(&r, NULL, "--timeout", t, "resolve", "--server", d->url, "ctl-flags", NULL);
	assert_exit(&r, 0);
	assert_string_equal(r.out, "http://127.0.0.1:9351\n");
}

static void
test_list_sorted(void **state)
{
	run         r;
	const char *a, *b;

	CTL(&r, state, "register", "ctl-list", "http://127.0.0.1:9402", "--meta", "zone=b");
	assert_exit(&r, 0);
	CTL(&r, state, "register", "ctl-list", "http://127.0.0.1:9401", "--ttl-ms", "60000");
	assert_exit(&r, 0);

	CTL(&r, state, "list", "ctl-list");
	assert_exit(&r, 0);
	assert_true(strncmp(r.out, "SERVICE ", 8) == 0);
	assert_contains(r.out, "ENDPOINT");
	assert_contains(r.out, "METADATA\n");
	a = strstr(r.out, "http://127.0.0.1:9401");
	b = strstr(r.out, "http://127.0.0.1:9402");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b);
	assert_contains(r.out, "zone=b\n");
	assert_contains(r.out, "60000  -\n");

	CTL(&r, state, "list", "ctl-list", "--json");
	assert_exit(&r, 0);
	assert_true(strncmp(r.out, "{\"revision\":", 12) == 0);
	assert_contains(r.out, ",\"instances\":[{\"service\":\"ctl-list\"");
	a = strstr(r.out, "\"endpoint\":\"http://127.0.0.1:9401\"");
	b = strstr(r.out, "\"endpoint\":\"http://127.0.0.1:9402\"");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b);

	/* Every service: ours are among them. */
	CTL(&r, state, "list");
	assert_exit(&r, 0);
	assert_contains(r.out, "http://127.0.0.1:9401");

	/* An unknown service lists nothing; that is not an error. */
	CTL(&r, state, "list", "ctl-list-none", "--json");
	assert_exit(&r, 0);
	assert_contains(r.out, "\"instances\":[]}");
}

static void
test_health_never_checked(void **state)
{
	run r;

	/* A long TTL: nothing checks the instance, and it cannot expire during the test. */
	CTL(&r, state, "register", "ctl-health", "http://127.0.0.1:9501", "--ttl-ms", "600000");
	assert_exit(&r, 0);

	/* The service's verdict, then each instance: endpoint, health, last check, last error. */
	CTL(&r, state, "health", "ctl-health");
	assert_exit(&r, 1);
	assert_string_equal(r.out,
	    "ctl-health: unknown\n"
	    "  http://127.0.0.1:9501  unknown    never                     -\n");

	CTL(&r, state, "health", "Ctl_Health", "--json");
	assert_exit(&r, 1);
	assert_string_equal(r.out,
	    "{\"service\":\"ctl-health\",\"healthy\":false,\"state\":\"unknown\",\"instances\":["
	    "{\"endpoint\":\"http://127.0.0.1:9501\",\"health\":\"unknown\",\"last_check_ms\":0,"
	    "\"last_error\":\"\"}]}\n");

	CTL(&r, state, "health", "ctl-health", "http://127.0.0.1:9501");
	assert_exit(&r, 1);
	assert_string_equal(r.out, "unknown\n");

	CTL(&r, state, "--json", "health", "Ctl_Health", "http://127.0.0.1:9501");
	assert_exit(&r, 1);
	assert_string_equal(r.out,
	    "{\"service\":\"ctl-health\",\"endpoint\":\"http://127.0.0.1:9501\","
	    "\"healthy\":false,\"state\":\"unknown\"}\n");
}

static void
test_health_not_found(void **state)
{
	run r;

	CTL(&r, state, "health", "ctl-health-none");
	assert_exit(&r, 1);
	assert_one_error_line(&r, "health ctl-health-none: ");

	CTL(&r, state, "register", "ctl-health-ep", "http://127.0.0.1:9551");
	assert_exit(&r, 0);
	CTL(&r, state, "health", "ctl-health-ep", "http://127.0.0.1:9552");
	assert_exit(&r, 1);
	assert_one_error_line(&r, "service ctl-health-ep has no instance http://127.0.0.1:9552");
}

static void
test_resolve_not_found(void **state)
{
	run r;

	CTL(&r, state, "resolve", "ctl-resolve-none");
	assert_exit(&r, 1);
	assert_one_error_line(&r,
	    "discoveryctl: resolve ctl-resolve-none: service ctl-resolve-none is not registered");
}

static void
test_resolve_healthy_only(void **state)
{
	run r;

	CTL(&r, state, "register", "ctl-unavailable", "http://127.0.0.1:9601", "--ttl-ms",
	    "600000");
	assert_exit(&r, 0);
	CTL(&r, state, "resolve", "ctl-unavailable", "--healthy-only");
	assert_exit(&r, 1);
	assert_one_error_line(&r, "no healthy instance");
}

static void
test_deregister(void **state)
{
	run r;

	CTL(&r, state, "register", "ctl-dereg", "http://127.0.0.1:9701");
	assert_exit(&r, 0);
	CTL(&r, state, "register", "ctl-dereg", "http://127.0.0.1:9702");
	assert_exit(&r, 0);
	CTL(&r, state, "register", "ctl-dereg", "http://127.0.0.1:9703");
	assert_exit(&r, 0);

	CTL(&r, state, "deregister", "ctl-dereg", "http://127.0.0.1:9701");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "removed 1\n");

	CTL(&r, state, "deregister", "ctl-dereg");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "removed 2\n");

	CTL(&r, state, "deregister", "ctl-dereg");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "removed 0\n");
	assert_string_equal(r.err, "");

	CTL(&r, state, "deregister", "ctl-dereg", "--json");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "{\"removed\":0}\n");

	CTL(&r, state, "resolve", "ctl-dereg");
	assert_exit(&r, 1);
}

static void
test_invalid_input_rejected_by_server(void **state)
{
	run r;

	CTL(&r, state, "register", "ctl-bad-ep", "ftp://x");
	assert_exit(&r, 4);
	assert_one_error_line(&r, "register ctl-bad-ep ftp://x: endpoint \"ftp://x\" must use");
}

static void
test_invalid_service_name(void **state)
{
	run r;

	/* "--" ends options, so a name that starts with '-' reaches the server. */
	CTL(&r, state, "register", "--", "-ctl-bad-", "http://127.0.0.1:9801");
	assert_exit(&r, 4);
	assert_one_error_line(&r, "must start and end with a letter or digit");

	CTL(&r, state, "register", "ctl-bad-ttl", "http://127.0.0.1:9802", "--ttl-ms", "5");
	assert_exit(&r, 4);
	assert_one_error_line(&r, "ttl_ms");
}

/* Command lines discoveryctl must refuse before talking to any server. */
static const struct usage_case {
	const char *name;
	const char *argv[8];
	const char *stderr_has;
} usage_cases[] = {
	{ "no command", { NULL }, "no command given" },
	{ "unknown command", { "frobnicate", NULL }, "unknown command 'frobnicate'" },
	{ "missing endpoint", { "register", "ctl-usage", NULL }, "register: missing arguments" },
	{ "missing service", { "resolve", NULL }, "resolve: missing arguments" },
	{ "extra argument", { "resolve", "a", "b", NULL }, "resolve: too many arguments" },
	{ "unknown option", { "list", "--bogus", NULL }, "unknown option --bogus" },
	{ "short option", { "list", "-x", NULL }, "unknown option -x" },
	{ "value for a flag", { "list", "--json=yes", NULL }, "--json takes no value" },
	{ "missing value", { "list", "--timeout", NULL }, "--timeout needs a value" },
	{ "zero timeout", { "--timeout", "0", "list", NULL }, "--timeout 0" },
	{ "negative timeout", { "--timeout=-1", "list", NULL }, "--timeout -1" },
	{ "timeout not a number", { "--timeout", "5s", "list", NULL }, "--timeout 5s" },
	{ "ttl not a number", { "register", "a", "http://h:1", "--ttl-ms", "12x", NULL },
	    "--ttl-ms 12x" },
	{ "negative weight", { "register", "a", "http://h:1", "--weight", "-1", NULL },
	    "--weight -1" },
	{ "weight too big", { "register", "a", "http://h:1", "--weight=4294967296", NULL },
	    "--weight 4294967296" },
	{ "meta without =", { "register", "a", "http://h:1", "--meta", "novalue", NULL },
	    "--meta novalue" },
	{ "meta without key", { "register", "a", "http://h:1", "--meta", "=v", NULL },
	    "--meta =v" },
	{ "option of another command", { "list", "--healthy-only", NULL },
	    "list does not take --healthy-only" },
	{ "empty endpoint", { "deregister", "a", "", NULL }, "deregister: argument 2 is empty" },
	{ "empty server", { "--server=", "list", NULL }, "--server needs a URL" },
	{ "empty publish", { "--publish=", "watch", NULL }, "--publish needs a URL" },
	{ "zero count", { "watch", "--count", "0", NULL }, "--count 0" },
	{ "count not a number", { "watch", "--count=1x", NULL }, "--count 1x" },
	{ "count of another command", { "list", "--count", "1", NULL },
	    "list does not take --count" },
	{ "watch option of another command", { "watch", "--healthy-only", NULL },
	    "watch does not take --healthy-only" },
	{ "wait without a service", { "wait", NULL }, "wait: missing arguments" },
	{ "healthy and registered", { "wait", "a", "--healthy", "--registered", NULL },
	    "wait: --healthy and --registered exclude each other" },
	{ "registered of another command", { "list", "--registered", NULL },
	    "list does not take --registered" },
	{ "zero wait timeout", { "wait", "a", "--timeout", "0", NULL }, "--timeout 0" },
};

static void
test_usage_errors(void **state)
{
	const td_daemon *d = *state;

	for (size_t i = 0; i < sizeof(usage_cases) / sizeof(usage_cases[0]); i++) {
		const struct usage_case *u = &usage_cases[i];
		const char              *argv[12];
		size_t                   n = 0;
		char                     out[1024], err[8192];

		argv[n++] = DISCOVERYCTL_PATH;
		argv[n++] = "--server";
		argv[n++] = d->url;
		for (size_t k = 0; u->argv[k] != NULL; k++) {
			argv[n++] = u->argv[k];
		}
		argv[n]    = NULL;
		int status = td_run(argv, out, sizeof(out), err, sizeof(err));
		/* The command's usage, or for no command a one-line pointer to --help. */
		if (status != 2 || strstr(err, u->stderr_has) == NULL
		    || (strstr(err, "usage: discoveryctl") == NULL
		        && strstr(err, "Try 'discoveryctl --help'") == NULL)
		    || out[0] != 0 || strncmp(err, "discoveryctl: ", 14) != 0) {
			fail_msg("%s: exit %d (want 2), stderr should hold \"%s\" and usage\n"
			         "--- stdout:\n%s--- stderr:\n%s",
			    u->name, status, u->stderr_has, out, err);
		}
	}
}

/* A typo gets a suggestion and a pointer to --help, not the whole usage. */
static void
test_unknown_command_suggestion(void **state)
{
	run r;

	CTL(&r, state, "resolv", "x");
	assert_exit(&r, 2);
	assert_string_equal(r.err,
	    "discoveryctl: unknown command 'resolv'; did you mean 'resolve'?\n"
	    "Try 'discoveryctl --help' for the commands and options.\n");
	assert_string_equal(r.out, "");
	CTL(&r, state, "regster", "x", "http://127.0.0.1:1");
	assert_exit(&r, 2);
	assert_contains(r.err, "did you mean 'register'?");
	CTL(&r, state, "frobnicate");
	assert_exit(&r, 2);
	assert_string_equal(r.err,
	    "discoveryctl: unknown command 'frobnicate'\n"
	    "Try 'discoveryctl --help' for the commands and options.\n");
}

/* --server at the PUB port: the handshake fails, and the message says which port to use. */
static void
test_server_is_the_publish_port(void **state)
{
	const td_daemon *d = *state;
	run              r;

	ctl_run(&r, d->pub_url, "list", NULL);
	assert_exit(&r, 3);
	assert_one_error_line(&r, "the peer speaks another protocol");
	assert_contains(r.err, "REQ/REP URL");
	assert_contains(r.err, d->pub_url);
}

/* watch with nothing listening: says so after a second, gives up when --timeout passes. */
static void
test_watch_without_a_server(void **state)
{
	char timeout[32];
	run  r;

	(void) state;
	timeout_arg(timeout, sizeof(timeout), 1.5);
	ctl_run(&r, UNREACHABLE, "--publish", UNREACHABLE, "watch", "--timeout", timeout, NULL);
	assert_exit(&r, 3);
	char yet[160], within[160];
	snprintf(yet, sizeof(yet), "watch: no connection to %s yet; still trying", UNREACHABLE);
	snprintf(within, sizeof(within), "watch: no connection to %s within", UNREACHABLE);
	assert_contains(r.err, yet);
	assert_contains(r.err, within);
	assert_string_equal(r.out, "");
}

static void
test_too_many_meta(void **state)
{
	const td_daemon *d = *state;
	const char      *argv[8 + 2 * 65];
	char             kv[65][16], out[256], err[8192];
	size_t           n = 0;

	argv[n++] = DISCOVERYCTL_PATH;
	argv[n++] = "--server";
	argv[n++] = d->url;
	argv[n++] = "register";
	argv[n++] = "ctl-meta-limit";
	argv[n++] = "http://127.0.0.1:9851";
	for (int i = 0; i < 65; i++) {
		snprintf(kv[i], sizeof(kv[i]), "k%d=v", i);
		argv[n++] = "--meta";
		argv[n++] = kv[i];
	}
	argv[n] = NULL;
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 2);
	assert_non_null(strstr(err, "at most 64 --meta"));

	/* 64 is allowed. */
	argv[n - 2] = NULL;
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 0);
}

static void
test_help_and_version(void **state)
{
	run r;

	(void) state;
	ctl_run(&r, NULL, "--help", NULL);
	assert_exit(&r, 0);
	assert_true(strncmp(r.out, "usage: discoveryctl", 19) == 0);
	assert_contains(r.out, "  register SERVICE ENDPOINT");
	assert_contains(r.out, "  heartbeat SERVICE ENDPOINT");
	assert_contains(r.out, "  watch [SERVICE]... [--count N]");
	assert_contains(r.out, "  wait SERVICE... [--timeout SECONDS] [--healthy|--registered]");
	assert_contains(r.out, "  --publish URL ");
	assert_contains(r.out, "Exit status:");
	assert_contains(r.out, "  3  server unreachable or timed out");
	assert_string_equal(r.err, "");

	ctl_run(&r, NULL, "resolve", "-h", NULL);
	assert_exit(&r, 0);
	assert_contains(r.out, "usage: discoveryctl");

	ctl_run(&r, NULL, "--version", NULL);
	assert_exit(&r, 0);
	assert_string_equal(r.out, "discoveryctl 0.1.0\n");
}

static void
test_server_unreachable(void **state)
{
	run r;

	(void) state;
	ctl_run(&r, UNREACHABLE, "resolve", "ctl-unreachable", NULL);
	assert_exit(&r, 3);
	char cannot[96];
	snprintf(cannot, sizeof(cannot), "cannot connect to %s", UNREACHABLE);
	assert_one_error_line(&r, cannot);

	ctl_run(&r, "http://127.0.0.1:1", "list", NULL);
	assert_exit(&r, 2);
	assert_contains(r.err, "discoveryctl: --server http://127.0.0.1:1");
}

static void
test_server_from_environment(void **state)
{
	const td_daemon *d = *state;
	run              r;

	assert_int_equal(setenv("DISCOVERY_SERVER", d->url, 1), 0);
	ctl_run(&r, NULL, "list", "ctl-env", NULL);
	assert_exit(&r, 0);

	/* The flag wins over the environment. */
	assert_int_equal(setenv("DISCOVERY_SERVER", UNREACHABLE, 1), 0);
	ctl_run(&r, d->url, "list", "ctl-env", NULL);
	assert_exit(&r, 0);
	ctl_run(&r, NULL, "list", "ctl-env", NULL);
	assert_exit(&r, 3);
	unsetenv("DISCOVERY_SERVER");
}

static void
test_meta_in_json(void **state)
{
	run r;

	CTL(&r, state, "register", "ctl-meta", "http://127.0.0.1:9901", "--meta", "zone=eu-1",
	    "--meta=team=core", "--meta", "url=a=b", "--meta", "note=say \"hi\" \\o/", "--meta",
	    "city=Zürich", "--health-path", "ready", "--json");
	assert_exit(&r, 0);
	assert_true(r.out[0] == '{');
	/* Sorted by key; quotes and backslashes escaped; UTF-8 as is. */
	assert_contains(r.out,
	    "\"metadata\":{\"city\":\"Zürich\",\"note\":\"say \\\"hi\\\" "
	    "\\\\o/\",\"team\":\"core\",\"url\":\"a=b\",\"zone\":\"eu-1\"}");
	assert_contains(r.out, "\"health_path\":\"/ready\"");

	CTL(&r, state, "list", "ctl-meta");
	assert_exit(&r, 0);
	assert_contains(r.out, "city=Zürich,note=say \"hi\" \\o/,team=core,url=a=b,zone=eu-1\n");
}

static void
test_heartbeat_ttl(void **state)
{
	run  r;
	char ttl[16], ttl_line[64];

	/* The TTL must outlive the calls that find it healthy: stretched. */
	snprintf(ttl, sizeof(ttl), "%d", tu_stretch_ms(5000));
	snprintf(ttl_line, sizeof(ttl_line), "ttl_ms:        %s\n", ttl);
	CTL(&r, state, "register", "ctl-beat", "http://127.0.0.1:9951", "--ttl-ms", ttl);
	assert_exit(&r, 0);

	CTL(&r, state, "heartbeat", "ctl-beat", "http://127.0.0.1:9951");
	assert_exit(&r, 0);
	assert_contains(r.out, "health:        healthy\n");
	assert_contains(r.out, ttl_line);

	CTL(&r, state, "health", "ctl-beat", "http://127.0.0.1:9951");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "healthy\n");

	CTL(&r, state, "health", "ctl-beat", "--json");
	assert_exit(&r, 0);
	static const char beat_json[]
	    = "{\"service\":\"ctl-beat\",\"healthy\":true,\"state\":\"healthy\",\"instances\":["
	      "{\"endpoint\":\"http://127.0.0.1:9951\",\"health\":\"healthy\",\"last_check_ms\":";
	assert_true(strncmp(r.out, beat_json, sizeof(beat_json) - 1) == 0);
	assert_contains(r.out, ",\"last_error\":\"\"}]}\n");
	assert_ptr_equal(strchr(r.out, '\n'), r.out + strlen(r.out) - 1);

	CTL(&r, state, "resolve", "ctl-beat", "--healthy-only");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "http://127.0.0.1:9951\n");
}

static void
test_heartbeat_without_ttl(void **state)
{
	run r;

	CTL(&r, state, "register", "ctl-beat-nottl", "http://127.0.0.1:9961");
	assert_exit(&r, 0);
	CTL(&r, state, "heartbeat", "ctl-beat-nottl", "http://127.0.0.1:9961");
	assert_exit(&r, 4);
	assert_one_error_line(&r, "without ttl_ms");

	CTL(&r, state, "heartbeat", "ctl-beat-nottl", "http://127.0.0.1:9962");
	assert_exit(&r, 1);
	assert_one_error_line(&r, "has no instance http://127.0.0.1:9962");
}

/* ---- watch ---- */

/* Checks one plain event line: "TIME TYPE SERVICE ENDPOINT rest", rest up to the newline. */
static void
assert_event_line(
    const char *line, const char *type, const char *service, const char *endpoint, const char *rest)
{
	char want[512];

	assert_event_time(line);
	snprintf(want, sizeof(want), "%s %s %s%s", type, service, endpoint, rest);
	if (strncmp(line + 25, want, strlen(want)) != 0) {
		fail_msg("want \"<time> %s\", got:\n%s", want, line);
	}
}

static void
test_watch_prints_registered(void **state)
{
	fixture    *f = *state;
	const char *args[]
	    = { "watch", "memory-w", "--count", "1", "--publish", f->d.pub_url, NULL };
	char        out[16384];
	const char *ep;

	bg_start(&f->watch, args);
	register_until_exit(state, &f->watch, "memory-w", NULL, out, sizeof(out));
	assert_int_equal(count_lines(out), 1);
	assert_event_line(out, "registered", "memory-w", "http://127.0.0.1:21", "");
	/* After the endpoint: the health, and the reason in parentheses if there is one. */
	ep = strstr(out, "http://127.0.0.1:21");
	ep = strchr(ep, ' ');
	assert_true(strcmp(ep, " unknown\n") == 0
	    || (strncmp(ep, " unknown (", 10) == 0 && strcmp(ep + strlen(ep) - 2, ")\n") == 0));
}

static void
test_watch_filters_services(void **state)
{
	fixture    *f      = *state;
	const char *args[] = { "watch", "Memory", "--count", "1", "--publish", f->d.pub_url, NULL };
	char        out[16384];

	/* memory-cache shares a prefix with memory and is registered first each time. */
	bg_start(&f->watch, args);
	register_until_exit(state, &f->watch, "memory", "memory-cache", out, sizeof(out));
	assert_int_equal(count_lines(out), 1);
	assert_event_line(out, "registered", "memory", "http://127.0.0.1:21", "");
	assert_null(strstr(out, "memory-cache"));
}

static void
test_watch_json(void **state)
{
	fixture    *f = *state;
	const char *args[]
	    = { "watch", "memory-j", "--count", "1", "--json", "--publish", f->d.pub_url, NULL };
	char   out[16384];
	size_t changes = 0;

	bg_start(&f->watch, args);
	register_until_exit(state, &f->watch, "memory-j", NULL, out, sizeof(out));
	/* One object per line; SYNC heartbeats may come first and do not count. */
	for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = 0;
		if (strncmp(line, "{\"time_ms\":", 11) != 0 || nl[-1] != '}') {
			fail_msg("not one JSON event: %s", line);
		}
		if (strstr(line, "\"type\":\"sync\"") != NULL) {
			assert_contains(line, ",\"revision\":");
			assert_null(strstr(line, "\"service\""));
			continue;
		}
		changes++;
		assert_contains(line,
		    ",\"type\":\"registered\",\"service\":\"memory-j\","
		    "\"endpoint\":\"http://127.0.0.1:21");
		assert_contains(line, ",\"health\":\"unknown\",\"revision\":");
		assert_contains(line, ",\"reason\":\"");
		assert_null(strstr(line, "\"previous\""));
		assert_contains(line, ",\"instance\":{\"service\":\"memory-j\",\"endpoint\":");
		assert_contains(line, "\"ttl_ms\":600000");
		assert_string_equal(line + strlen(line) - 2, "}}");
	}
	assert_int_equal(changes, 1);
}

static void
test_watch_until_signal(void **state)
{
	fixture    *f      = *state;
	const char *args[] = { "watch", "--publish", UNREACHABLE, NULL };
	char        out[1024], err[1024];

	/*
	 * Nothing to receive: the watch waits for the server, and a signal ends
	 * it cleanly, once it has had the time to set up its handlers.
	 */
	bg_start(&f->watch, args);
	tu_sleep_ms(300 * tu_slowdown());
	assert_int_equal(kill(f->watch.pid, SIGINT), 0);
	assert_int_equal(bg_finish(&f->watch, 2000, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "");
	/* After a second with no connection (a slow machine) it says so, once. */
	if (err[0] != 0) {
		char want[256];
		snprintf(want, sizeof(want),
		    "discoveryctl: watch: no connection to %s yet; still trying (is "
		    "discoveryd running, and is this its --publish URL?)\n",
		    UNREACHABLE);
		assert_string_equal(err, want);
	}
}

static void
test_watch_rejects(void **state)
{
	run r;

	(void) state;
	ctl_run(&r, NULL, "watch", "--publish", "http://127.0.0.1:1", NULL);
	assert_exit(&r, 2);
	assert_one_error_line(&r, "--publish http://127.0.0.1:1: not a URL");

	ctl_run(&r, NULL, "watch", "--publish", UNREACHABLE, "--", "-bad-", NULL);
	assert_exit(&r, 4);
	assert_one_error_line(&r, "watch -bad-: ");
}

/*
 * Health changes, end to end: a daemon of its own checks an HTTP endpoint
 * every 100 ms, and watch and health report what it sees.
 */
static void
test_watch_health_changes(void **state)
{
	static const char *const flags[] = { "--health-interval", "0.1", "--health-timeout", "1",
		"--rise", "1", "--fall", "1", NULL };
	fixture                 *f       = *state;
	char                     ep[64], out[16384], err[4096], want[128];
	const char              *line;
	run                      r;

	assert_int_equal(th_start(&f->http), 0);
	assert_int_equal(th_set(f->http, "/health", 200), 0);
	assert_int_equal(td_daemon_start(&f->own, flags), 0);
	const char *args[] = { "watch", "ctl-live", "--publish", f->own.pub_url, NULL };
	bg_start(&f->watch, args);

	/* Subscribed once it prints one of these (long TTL: never checked, no further events). */
	out[0] = 0;
	for (int i = 0; i < 100 && strstr(out, " registered ") == NULL; i++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 22000 + i);
		ctl_run(&r, f->own.url, "register", "ctl-live", ep, "--ttl-ms", "600000", NULL);
		assert_exit(&r, 0);
		tu_sleep_ms(100);
		slurp(f->watch.out_path, out, sizeof(out));
	}

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", th_port(f->http));
	ctl_run(&r, f->own.url, "register", "ctl-live", ep, NULL);
	assert_exit(&r, 0);
	snprintf(want, sizeof(want), "health_changed ctl-live %s unknown -> healthy", ep);
	bg_wait_output(&f->watch, want);

	ctl_run(&r, f->own.url, "health", "ctl-live", NULL);
	assert_exit(&r, 0);
	assert_true(strncmp(r.out, "ctl-live: healthy\n", 18) == 0);
	snprintf(want, sizeof(want), "\n  %s  healthy    ", ep);
	assert_non_null(line = strstr(r.out, want));
	assert_event_time(line + strlen(want));
	assert_true(strncmp(line + strlen(want) + 24, "  -\n", 4) == 0);

	assert_int_equal(th_set(f->http, "/health", 500), 0);
	snprintf(want, sizeof(want), "health_changed ctl-live %s healthy -> unhealthy (", ep);
	bg_wait_output(&f->watch, want);

	ctl_run(&r, f->own.url, "health", "ctl-live", NULL);
	assert_exit(&r, 1);
	snprintf(want, sizeof(want), "\n  %s  unhealthy  ", ep);
	assert_non_null(line = strstr(r.out, want));
	assert_event_time(line + strlen(want));
	line += strlen(want) + 26;
	assert_true(strncmp(line, "-\n", 2) != 0);
	assert_non_null(strstr(line, "500"));

	/* SIGTERM ends it like SIGINT; plain output has no SYNC lines. */
	assert_int_equal(kill(f->watch.pid, SIGTERM), 0);
	assert_int_equal(bg_finish(&f->watch, 2000, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_null(strstr(out, " sync "));
	for (const char *l = out; *l != 0; l = strchr(l, '\n') + 1) {
		assert_event_time(l);
	}
	assert_true(th_hits(f->http, "/health") >= 2);
}

/* ---- wait ---- */

/* Registers a TTL instance (never checked: unknown), and makes it healthy when asked. */
static void
reg_ttl(void **state, const char *service, const char *endpoint, bool healthy)
{
	run r;

	CTL(&r, state, "register", service, endpoint, "--ttl-ms", "600000");
	assert_exit(&r, 0);
	if (healthy) {
		CTL(&r, state, "heartbeat", service, endpoint);
		assert_exit(&r, 0);
	}
}

static void
test_wait_ready(void **state)
{
	fixture *f = *state;
	run      r;

	reg_ttl(state, "ctl-wait-a", "http://127.0.0.1:9901", true);
	reg_ttl(state, "ctl-wait-b", "http://127.0.0.1:9902", true);
	CTL(&r, state, "--publish", f->d.pub_url, "wait", "ctl-wait-a", "CTL_WAIT_B", "ctl-wait-a");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "ready: ctl-wait-a ctl-wait-b\n");
	assert_string_equal(r.err, "");

	CTL(&r, state, "--publish", f->d.pub_url, "--json", "wait", "ctl-wait-a", "--healthy");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "{\"ready\":true,\"missing\":[],\"unhealthy\":[]}\n");
	assert_string_equal(r.err, "");
}

static void
test_wait_timeout(void **state)
{
	fixture *f = *state;
	run      r;
	char     t3[32], t2[32], opt[64], want[256];

	/* The state is read before the timeout: it must be long enough for that. */
	timeout_arg(t3, sizeof(t3), 0.3);
	timeout_arg(t2, sizeof(t2), 0.2);
	reg_ttl(state, "ctl-wait-sick", "http://127.0.0.1:9911", false);
	reg_ttl(state, "ctl-wait-fine", "http://127.0.0.1:9912", true);
	CTL(&r, state, "--publish", f->d.pub_url, "wait", "ctl-wait-fine", "ctl-wait-sick",
	    "ctl-wait-none", "--timeout", t3);
	assert_exit(&r, 1);
	assert_one_error_line(&r, "wait: ");
	snprintf(want, sizeof(want),
	    "discoveryctl: wait: timed out after %s s; missing: ctl-wait-none; "
	    "unhealthy: ctl-wait-sick\n",
	    t3);
	assert_string_equal(r.err, want);

	snprintf(opt, sizeof(opt), "--timeout=%s", t2);
	CTL(&r, state, "--publish", f->d.pub_url, "--json", "wait", "ctl-wait-none",
	    "ctl-wait-sick", "ctl-wait-fine", opt);
	assert_exit(&r, 1);
	assert_string_equal(r.out,
	    "{\"ready\":false,\"missing\":[\"ctl-wait-none\"],\"unhealthy\":[\"ctl-wait-sick\"]}"
	    "\n");
	snprintf(want, sizeof(want),
	    "discoveryctl: wait: timed out after %s s; missing: ctl-wait-none", t2);
	assert_contains(r.err, want);

	/* --registered: an instance of any health will do. */
	CTL(&r, state, "--publish", f->d.pub_url, "wait", "ctl-wait-sick", "--registered");
	assert_exit(&r, 0);
	assert_string_equal(r.out, "ready: ctl-wait-sick\n");
	CTL(&r, state, "--publish", f->d.pub_url, "wait", "ctl-wait-sick", "ctl-wait-none",
	    "--registered", "--timeout", t2);
	assert_exit(&r, 1);
	snprintf(want, sizeof(want), "wait: timed out after %s s; missing: ctl-wait-none\n", t2);
	assert_one_error_line(&r, want);
}

static void
test_wait_until_ready(void **state)
{
	fixture    *f = *state;
	const char *args[]
	    = { "--server", f->d.url, "--publish", f->d.pub_url, "wait", "ctl-wait-late", NULL };
	char out[1024], err[1024];

	bg_start(&f->watch, args);
	tu_sleep_ms(100);
	reg_ttl(state, "ctl-wait-late", "http://127.0.0.1:9921", false);
	tu_sleep_ms(100);
	assert_false(bg_exited(&f->watch)); /* registered is not healthy */
	reg_ttl(state, "ctl-wait-late", "http://127.0.0.1:9921", true);
	assert_int_equal(
	    bg_finish(&f->watch, TU_LIVENESS_MS, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "ready: ctl-wait-late\n");
	assert_string_equal(err, "");
}

static void
test_wait_rejects(void **state)
{
	run r;

	(void) state;
	/* No server at all: waited for until the timeout, and said so. */
	ctl_run(&r, UNREACHABLE, "--publish", UNREACHABLE, "wait", "ctl-wait-x", "--timeout", "0.2",
	    NULL);
	assert_exit(&r, 1);
	assert_one_error_line(&r, "wait: timed out after 0.2 s; missing: ctl-wait-x; ");
	assert_contains(r.err, UNREACHABLE);

	ctl_run(&r, UNREACHABLE, "--publish", UNREACHABLE, "wait", "--", "-bad-", NULL);
	assert_exit(&r, 4);
	assert_one_error_line(&r, "wait -bad-: ");

	ctl_run(&r, "http://127.0.0.1:1", "--publish", UNREACHABLE, "wait", "x", NULL);
	assert_exit(&r, 2);
	assert_one_error_line(&r, "http://127.0.0.1:1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_then_resolve),
		cmocka_unit_test(test_name_is_normalized),
		cmocka_unit_test(test_resolve_json),
		cmocka_unit_test(test_server_flag_forms),
		cmocka_unit_test(test_list_sorted),
		cmocka_unit_test(test_health_never_checked),
		cmocka_unit_test(test_health_not_found),
		cmocka_unit_test(test_resolve_not_found),
		cmocka_unit_test(test_resolve_healthy_only),
		cmocka_unit_test(test_deregister),
		cmocka_unit_test(test_invalid_input_rejected_by_server),
		cmocka_unit_test(test_invalid_service_name),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_unknown_command_suggestion),
		cmocka_unit_test(test_server_is_the_publish_port),
		cmocka_unit_test(test_watch_without_a_server),
		cmocka_unit_test(test_too_many_meta),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_server_unreachable),
		cmocka_unit_test(test_server_from_environment),
		cmocka_unit_test(test_meta_in_json),
		cmocka_unit_test(test_heartbeat_ttl),
		cmocka_unit_test(test_heartbeat_without_ttl),
		cmocka_unit_test_teardown(test_watch_prints_registered, watch_teardown),
		cmocka_unit_test_teardown(test_watch_filters_services, watch_teardown),
		cmocka_unit_test_teardown(test_watch_json, watch_teardown),
		cmocka_unit_test_teardown(test_watch_until_signal, watch_teardown),
		cmocka_unit_test(test_watch_rejects),
		cmocka_unit_test_teardown(test_watch_health_changes, watch_teardown),
		cmocka_unit_test(test_wait_ready),
		cmocka_unit_test(test_wait_timeout),
		cmocka_unit_test_teardown(test_wait_until_ready, watch_teardown),
		cmocka_unit_test(test_wait_rejects),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
