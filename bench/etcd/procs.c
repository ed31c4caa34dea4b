/* etcd and etcdload as child processes of scenario 7. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "procs.h"

#include "support/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_ATTEMPTS 3
#define READY_POLLS    3000 /* x 10 ms */

/* A free loopback port: bound to port 0, read, released (held until the caller starts etcd). */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t          len  = sizeof(a);
	int                fd   = socket(AF_INET, SOCK_STREAM, 0);
	int                port = -1;
	if (fd < 0) {
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.sin_family      = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0
	    && getsockname(fd, (struct sockaddr *) &a, &len) == 0) {
		port = ntohs(a.sin_port);
	}
	close(fd);
	return port;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole log, NUL-terminated (malloc'd; the caller frees), or NULL: the test kit's reader. */
static char *
read_all(const char *path)
{
	size_t len;
	return tu_slurp(path, &len);
}

/* One attempt on two fresh ports: 0 ready, 1 lost a port (retry), -1 failed. */
static int
start_once(bn_etcd *e, const char *etcd_path)
{
	int  cport = free_port(), pport = free_port();
	char curl[64], purl[64], cluster[96];
	if (cport < 0 || pport < 0 || cport == pport) {
		return 1;
	}
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", cport);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "bench=%s", purl);
	/* Default settings otherwise: fsync on every commit, snapshot count, no pre-vote. */
	const char *argv[] = { etcd_path, "--name", "bench", "--data-dir", e->data_dir,
		"--listen-client-urls", curl, "--advertise-client-urls", curl, "--listen-peer-urls",
		purl, "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster, NULL };
	rm_tree(e->data_dir);
	int fd = open(e->child.log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "cannot create %s: %s\n", e->child.log_path, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		execv(argv[0], (char *const *) argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	for (int i = 0; i < READY_POLLS; i++) {
		char *log   = read_all(e->child.log_path);
		bool  ready = log != NULL && strstr(log, "ready to serve client requests") != NULL;
		bool  inuse = log != NULL && strstr(log, "address already in use") != NULL;
		char *ver   = log != NULL ? strstr(log, "etcd Version: ") : NULL;
		if (ver != NULL) {
			sscanf(ver + strlen("etcd Version: "), "%31s", e->version);
		}
		free(log);
		if (ready) {
			e->child.pid = pid;
			snprintf(e->child.url, sizeof(e->child.url), "%s", curl);
			return 0;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			if (inuse) {
				return 1;
			}
			fprintf(stderr, "%s exited early (status %d)\n", etcd_path, st);
			return -1;
		}
		bn_sleep_ms(10);
	}
	fprintf(stderr, "%s was not ready within 30 s\n", etcd_path);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

int
bn_etcd_start(bn_etcd *e, const char *etcd_path, const char *out_dir)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->data_dir, sizeof(e->data_dir), "%s/etcd-data", out_dir);
	snprintf(e->child.log_path, sizeof(e->child.log_path), "%s/etcd-etcd.log", out_dir);
	for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
		int rv = start_once(e, etcd_path);
		if (rv == 0) {
			return 0;
		}
		if (rv < 0) {
			break;
		}
		fprintf(stderr, "etcd lost a port to another process; retrying on new ones\n");
	}
	char *log = read_all(e->child.log_path);
	fprintf(stderr, "---- %s ----\n%s----\n", e->child.log_path, log != NULL ? log : "");
	free(log);
	return -1;
}

void
bn_etcd_remove(bn_etcd *e)
{
	rm_tree(e->data_dir);
}

int
bn_go_run(const char *const *argv, const char *log_path, bn_go_result *r)
{
	int  p[2], st;
	char out[1024];
	int  logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (logfd < 0 || pipe(p) != 0) {
		fprintf(stderr, "etcdload: cannot set up: %s\n", strerror(errno));
		if (logfd >= 0) {
			close(logfd);
		}
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		close(logfd);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(logfd, 2);
		close(p[0]);
		close(p[1]);
		close(logfd);
		execv(argv[0], (char *const *) argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	close(logfd);
	size_t  n = 0;
	ssize_t k;
	while ((k = read(p[0], out + n, sizeof(out) - 1 - n)) > 0 || (k < 0 && errno == EINTR)) {
		n += k > 0 ? (size_t) k : 0;
		if (n == sizeof(out) - 1) {
			break;
		}
	}
	out[n] = 0;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) { }
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "etcdload %s failed (status %d); see %s\n", argv[1], st, log_path);
		return -1;
	}
	if (r == NULL) {
		return 0;
	}
	memset(r, 0, sizeof(*r));
	if (sscanf(out,
	        "ok=%lf bad=%lf errors=%lf seconds=%lf rps=%lf p50_us=%lf p99_us=%lf "
	        "server_cpu_s=%lf",
	        &r->ok, &r->bad, &r->errors, &r->seconds, &r->rps, &r->p50_us, &r->p99_us,
	        &r->server_cpu_s)
	    != 8) {
		fprintf(stderr, "etcdload %s printed no figures: %s\n", argv[1], out);
		return -1;
	}
	return 0;
}
