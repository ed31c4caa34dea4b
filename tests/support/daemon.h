/* Test support: the real discoveryd as a child process on loopback. */
#ifndef TEST_DAEMON_H
#define TEST_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct td_daemon {
	pid_t pid;
	char  url[128];       /* the REQ/REP URL it is bound to */
	char  pub_url[128];   /* the PUB URL events are published on */
	char  log_path[256];  /* its stderr */
	char  data_path[256]; /* its own --data file, removed when it ends; "" if given */
} td_daemon;

/*
 * Starts discoveryd listening on tcp://127.0.0.1:0 and publishing on
 * tcp://127.0.0.1:0, storing into a fresh temporary data file (unless
 * extra_args has its own --listen, --publish or --data),
 * with extra_args (NULL-terminated, may be NULL) appended, and waits until its log
 * says where it listens. Returns 0, or -1 after printing why (and the log) to stderr.
 */
int td_daemon_start(td_daemon *d, const char *const *extra_args);

/* td_daemon_start with a 0.2 s SYNC period, for tests that watch events. */
int td_daemon_start_sync(td_daemon *d, const char *const *extra_args);

/* SIGTERM, then waits up to 10 s; returns the exit status, or -1. */
int td_daemon_stop(td_daemon *d);

/* SIGKILL and reap. */
void td_daemon_kill(td_daemon *d);

/* True when the daemon's log contains text. */
bool td_daemon_log_contains(const td_daemon *d, const char *text);

/*
 * Runs argv (argv[0] a path) to completion with a 20 s bound, capturing
 * stdout and stderr into the given buffers (NUL-terminated, truncated).
 * Returns the exit status, or -1 if it could not run or was killed.
 */
int td_run(const char *const *argv, char *out, size_t out_len, char *err, size_t err_len);

#endif
