/*
 * The test kit: the real discoveryd as a child process on loopback, which
 * tells its bound URLs through --ready-fd (docs/ready-fd.md), and other
 * programs run to completion. Shared by tests/ and bench/; no cmocka here.
 */
#ifndef TEST_DAEMON_H
#define TEST_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct td_daemon {
	pid_t pid;
	char  url[128];       /* the first REQ/REP URL it is bound to */
	char  pub_url[128];   /* the PUB URL events are published on */
	char  ready[1024];    /* all it wrote to --ready-fd, "ready\n" last */
	char  log_path[512];  /* its stderr */
	char  data_path[256]; /* its own --data file, removed when it ends; "" if given */
} td_daemon;

/* The descriptor number the child gets its --ready-fd pipe on. */
#define TD_READY_FD 3

/*
 * Starts argv (argv[0] a discoveryd, under td_command's wrapper) with
 * "--ready-fd N" appended and its stderr in log_path (truncated first), and
 * waits up to bound_ms until it reports ready, filling d (pid, url, pub_url,
 * ready, log_path; data_path ""). Returns 0, or -1 after printing why and the
 * log to stderr (the child is then reaped). The caller stops it.
 */
int td_spawn(td_daemon *d, const char *const *argv, const char *log_path, int bound_ms);

/*
 * Starts discoveryd listening on tcp://127.0.0.1:0 and publishing on
 * tcp://127.0.0.1:0, storing into a fresh temporary data file (unless
 * extra_args has its own --listen, --publish or --data), its admin endpoint on
 * port 0 (a later --admin in extra_args wins), with extra_args
 * (NULL-terminated, may be NULL) appended, with td_spawn, and waits until it
 * reports ready (a liveness bound of 10 s times tu_slowdown()). Returns 0, or
 * -1 after printing why (and the log) to stderr.
 */
int td_daemon_start(td_daemon *d, const char *const *extra_args);

/* td_daemon_start with a 0.2 s SYNC period, for tests that watch events. */
int td_daemon_start_sync(td_daemon *d, const char *const *extra_args);

/*
 * SIGTERM, then waits up to 10 s (times tu_slowdown()); returns the exit
 * status, or -1. Under a wrapper, its errors show here as the wrapper's
 * error status (td_wrapper_error_status), and the log is printed.
 */
int td_daemon_stop(td_daemon *d);

/* SIGKILL and reap. */
void td_daemon_kill(td_daemon *d);

/* True when the daemon's log contains text. */
bool td_daemon_log_contains(const td_daemon *d, const char *text);

/*
 * The command line that runs argv: the words of DISCOVERY_TEST_WRAPPER (split
 * on blanks, no quoting) when it is set, then argv. scripts/valgrind.sh puts
 * every discoveryd and discoveryctl the tests start under valgrind this way.
 * Fills out (cap entries, NULL-terminated; exec it with execvp), copying the
 * words into buf; it allocates nothing, so it is built before fork. Returns
 * 0, or -1 when the command does not fit.
 */
int td_command(const char **out, size_t cap, const char *const *argv, char *buf, size_t buf_len);

#define TD_MAX_COMMAND 256 /* entries in a command line td_run or td_daemon_start builds */

/*
 * The exit status with which a wrapped program reports the wrapper's errors
 * (valgrind's --error-exitcode=N in DISCOVERY_TEST_WRAPPER), or -1.
 */
int td_wrapper_error_status(void);

/*
 * Runs argv (argv[0] a path, under td_command's wrapper) to completion with
 * a 20 s bound (times tu_slowdown()), capturing stdout and stderr into the
 * given buffers (NUL-terminated, truncated). Returns the exit status, or -1
 * if it could not run or was killed.
 */
int td_run(const char *const *argv, char *out, size_t out_len, char *err, size_t err_len);

#endif
