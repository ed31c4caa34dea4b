/* Spawns and reaps discoveryd and CLI processes for tests and benchmarks. */
#define _GNU_SOURCE /* pipe2 */
#include "support/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/testutil.h"

#define WRAPPER_ENV "DISCOVERY_TEST_WRAPPER"

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static char *
read_file(const char *path)
{
	size_t len;
	return tu_slurp(path, &len);
}

int
td_command(const char **out, size_t cap, const char *const *argv, char *buf, size_t buf_len)
{
	const char *env = getenv(WRAPPER_ENV);
	size_t      n   = 0;
	char       *save;

	if (env != NULL && snprintf(buf, buf_len, "%s", env) >= (int) buf_len) {
		return -1;
	}
	char *w = env != NULL ? strtok_r(buf, " \t", &save) : NULL;
	for (; w != NULL; w = strtok_r(NULL, " \t", &save)) {
		if (n + 1 >= cap) {
			return -1;
		}
		out[n++] = w;
	}
	for (size_t i = 0; argv[i] != NULL; i++) {
		if (n + 1 >= cap) {
			return -1;
		}
		out[n++] = argv[i];
	}
	out[n] = NULL;
	return 0;
}

int
td_wrapper_error_status(void)
{
	const char *env = getenv(WRAPPER_ENV);
	const char *at  = env != NULL ? strstr(env, "--error-exitcode=") : NULL;
	return at != NULL ? atoi(at + strlen("--error-exitcode=")) : -1;
}

bool
td_daemon_log_contains(const td_daemon *d, const char *text)
{
	char *log = read_file(d->log_path);
	bool  yes = log != NULL && strstr(log, text) != NULL;
	free(log);
	return yes;
}

static void
dump_log(const td_daemon *d)
{
	char *log = read_file(d->log_path);
	fprintf(stderr, "---- discoveryd log (%s) ----\n%s----\n", d->log_path, log ? log : "");
	free(log);
}

/* The data file the harness chose, with SQLite's companions. */
static void
remove_data(td_daemon *d)
{
	if (d->data_path[0] != 0) {
		char p[300];
		unlink(d->data_path);
		snprintf(p, sizeof(p), "%s-wal", d->data_path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", d->data_path);
		unlink(p);
	}
}

static int wait_bounded(pid_t pid, int ms);

/* Reads what discoveryd writes to its --ready-fd into d until "ready" or EOF (bounded). */
static int
await_ready(td_daemon *d, int fd, int bound_ms)
{
	size_t  n     = 0;
	int64_t start = tu_now_ms();
	for (;;) {
		char *end = strstr(d->ready, "ready\n");
		if (end != NULL && (end == d->ready || end[-1] == '\n')) {
			break;
		}
		int left = bound_ms - (int) (tu_now_ms() - start);
		if (left <= 0) {
			fprintf(stderr, "discoveryd did not report ready within %d ms\n", bound_ms);
			return -1;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int           r = poll(&p, 1, left);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			continue; /* the bound is checked above */
		}
		ssize_t got = read(fd, d->ready + n, sizeof(d->ready) - 1 - n);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got <= 0 || n + (size_t) got >= sizeof(d->ready) - 1) {
			fprintf(stderr, "discoveryd closed --ready-fd without \"ready\"\n");
			return -1;
		}
		n += (size_t) got;
		d->ready[n] = 0;
	}
	/* The first listener is the one tests talk to; see docs/ready-fd.md. */
	for (char *line = d->ready; *line != 0; line = strchr(line, '\n') + 1) {
		if (strncmp(line, "listen ", 7) == 0 && d->url[0] == 0) {
			sscanf(line + 7, "%127s", d->url);
		} else if (strncmp(line, "publish ", 8) == 0) {
			sscanf(line + 8, "%127s", d->pub_url);
		}
	}
	return d->url[0] != 0 && d->pub_url[0] != 0 ? 0 : -1;
}

int
td_spawn(td_daemon *d, const char *const *argv, const char *log_path, int bound_ms)
{
	const char *args[TD_MAX_COMMAND];
	const char *cmd[TD_MAX_COMMAND];
	char        words[1024], fdtext[16];
	int         pipefd[2], n = 0;

	memset(d, 0, sizeof(*d));
	snprintf(d->log_path, sizeof(d->log_path), "%s", log_path);
	snprintf(fdtext, sizeof(fdtext), "%d", TD_READY_FD);
	for (; argv[n] != NULL && n < TD_MAX_COMMAND - 3; n++) {
		args[n] = argv[n];
	}
	args[n++] = "--ready-fd";
	args[n++] = fdtext;
	args[n]   = NULL;
	if (td_command(cmd, TD_MAX_COMMAND, args, words, sizeof(words)) != 0) {
		fprintf(stderr, "td_spawn: " WRAPPER_ENV " is too long\n");
		return -1;
	}
	/* A log left by an earlier run must not be read as this one's. */
	int logfd = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fprintf(stderr, "td_spawn: %s: %s\n", d->log_path, strerror(errno));
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		perror("pipe2");
		close(logfd);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		close(logfd);
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		/* stderr first: the log may itself be descriptor TD_READY_FD (the first
		 * one opened in a process with only 0-2), which the pipe's copy replaces.
		 * dup2 clears close-on-exec on the copy; a copy onto itself keeps it. */
		dup2(logfd, 2);
		if (pipefd[1] == TD_READY_FD) {
			fcntl(TD_READY_FD, F_SETFD, 0);
		} else {
			dup2(pipefd[1], TD_READY_FD);
		}
		/* Nothing else of the test's: a socket it closes later (a stopped health
		 * server) must not stay open in the daemon. */
		close_range(TD_READY_FD + 1, ~0U, 0);
		execvp(cmd[0], (char *const *) cmd);
		_exit(127);
	}
	close(logfd);
	close(pipefd[1]);
	d->pid = pid;
	int rv = await_ready(d, pipefd[0], bound_ms);
	close(pipefd[0]);
	if (rv != 0) {
		/* It closed the pipe (exiting, then) or is stuck: give it a moment, then kill. */
		int st = wait_bounded(pid, 1000 * tu_slowdown());
		fprintf(stderr, "discoveryd did not start (exit status %d)\n", st);
		d->pid = 0;
		dump_log(d);
		return -1;
	}
	return 0;
}

int
td_daemon_start(td_daemon *d, const char *const *extra_args)
{
	const char     *argv[64];
	char            log_path[sizeof(d->log_path)], data_path[sizeof(d->data_path)] = "";
	int             n   = 0;
	const char     *tmp = getenv("TMPDIR");
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(log_path, sizeof(log_path), "%s/discoveryd-test-%d-%ld%09ld.log",
	    tmp != NULL && tmp[0] != 0 ? tmp : "/tmp", (int) getpid(), (long) now.tv_sec,
	    now.tv_nsec);
	bool own_listen = false, own_publish = false, own_data = false;
	for (int i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
		own_listen  = own_listen || strncmp(extra_args[i], "--listen", 8) == 0;
		own_publish = own_publish || strncmp(extra_args[i], "--publish", 9) == 0;
		own_data    = own_data || strncmp(extra_args[i], "--data", 6) == 0;
	}
	argv[n++] = DISCOVERYD_PATH;
	if (!own_listen) {
		argv[n++] = "--listen";
		argv[n++] = "tcp://127.0.0.1:0";
	}
	if (!own_publish) {
		argv[n++] = "--publish";
		argv[n++] = "tcp://127.0.0.1:0";
	}
	if (!own_data) {
		/* Every test stores what it registers, as production does, in a file of its own. */
		snprintf(data_path, sizeof(data_path), "%.*s.db",
		    (int) (strlen(log_path) - strlen(".log")), log_path);
		argv[n++] = "--data";
		argv[n++] = data_path;
	}
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	/* The admin endpoint on port 0 too: a server on the defaults may hold 7702. A
	 * test's own --admin comes later and wins. */
	argv[n++] = "--admin";
	argv[n++] = "http://127.0.0.1:0";
	for (int i = 0; extra_args != NULL && extra_args[i] != NULL && n < 62; i++) {
		argv[n++] = extra_args[i];
	}
	argv[n] = NULL;
	/* Liveness bound only: the daemon normally is up in milliseconds. */
	int rv = td_spawn(d, argv, log_path, 10000 * tu_slowdown());
	snprintf(d->data_path, sizeof(d->data_path), "%s", data_path);
	if (rv != 0) {
		remove_data(d);
	}
	return rv;
}

int
td_daemon_start_sync(td_daemon *d, const char *const *extra_args)
{
	const char *args[48];
	size_t      n = 0;
	args[n++]     = "--sync-interval";
	args[n++]     = "0.2";
	for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && n < 47; i++) {
		args[n++] = extra_args[i];
	}
	args[n] = NULL;
	return td_daemon_start(d, args);
}

static int
wait_bounded(pid_t pid, int ms)
{
	int st;
	for (int waited = 0; waited <= ms; waited += 5) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		if (r < 0 && errno != EINTR) {
			return -1;
		}
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

int
td_daemon_stop(td_daemon *d)
{
	if (d->pid <= 0) {
		return -1;
	}
	kill(d->pid, SIGTERM);
	int rv = wait_bounded(d->pid, 10000 * tu_slowdown());
	if (rv != 0) {
		if (rv == td_wrapper_error_status()) {
			fprintf(
			    stderr, "discoveryd exited %d: " WRAPPER_ENV " reported errors\n", rv);
		}
		dump_log(d);
	}
	d->pid = 0;
	unlink(d->log_path);
	remove_data(d);
	return rv;
}

void
td_daemon_kill(td_daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	remove_data(d);
}

int
td_run(const char *const *argv, char *out, size_t out_len, char *err, size_t err_len)
{
	char        opath[] = "/tmp/td-run-out-XXXXXX", epath[] = "/tmp/td-run-err-XXXXXX";
	const char *cmd[TD_MAX_COMMAND];
	char        words[1024];
	if (td_command(cmd, TD_MAX_COMMAND, argv, words, sizeof(words)) != 0) {
		fprintf(stderr, "td_run: " WRAPPER_ENV " is too long\n");
		return -1;
	}
	int ofd = mkstemp(opath), efd = mkstemp(epath);
	if (ofd < 0 || efd < 0) {
		if (ofd >= 0) {
			close(ofd);
			unlink(opath);
		}
		if (efd >= 0) {
			close(efd);
			unlink(epath);
		}
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0) {
			dup2(devnull, 0);
		}
		execvp(cmd[0], (char *const *) cmd);
		_exit(127);
	}
	close(ofd);
	close(efd);
	int   rv = pid > 0 ? wait_bounded(pid, 20000 * tu_slowdown()) : -1;
	char *o = read_file(opath), *e = read_file(epath);
	if (rv >= 0 && rv == td_wrapper_error_status()) {
		/* Only here can one see why: the caller just sees a wrong status. */
		fprintf(stderr, "---- %s exited %d: " WRAPPER_ENV " reported errors ----\n%s----\n",
		    argv[0], rv, e ? e : "");
	}
	snprintf(out, out_len, "%s", o ? o : "");
	snprintf(err, err_len, "%s", e ? e : "");
	free(o);
	free(e);
	unlink(opath);
	unlink(epath);
	return rv;
}
