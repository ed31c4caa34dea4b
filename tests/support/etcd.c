/* Debian's etcd as a child process (ports, data directory, readiness, stop), and a stand-in member
 * without a leader. */
#define _GNU_SOURCE /* accept4, strcasestr */
#include "support/etcd.h"

#include "support/testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_ATTEMPTS 3
#define MAX_EXTRA      16

const char *
te_etcd_path(void)
{
	const char *p = getenv("DISCOVERY_ETCD");
	if (p == NULL || p[0] == 0) {
		p = "/usr/bin/etcd";
	}
	return access(p, X_OK) == 0 ? p : NULL;
}

/* Another process may take the port before etcd binds it: see start_once. */
int
te_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t          len  = sizeof(a);
	int                fd   = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int                port = -1;
	if (fd < 0) {
		return -1;
	}
	if (bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0
	    && getsockname(fd, (struct sockaddr *) &a, &len) == 0) {
		port = ntohs(a.sin_port);
	}
	close(fd);
	return port;
}

static void
reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) { }
}

/* One attempt on two fresh ports: 0 ready, 1 lost a port (retry), -1 failed. */
static int
start_once(te_etcd *e, const char *etcd_path, const char *const *extra, int bound_ms)
{
	int         cport = te_free_port(), pport = te_free_port(), n = 0;
	char        curl[64], purl[64], cluster[96];
	const char *argv[16 + MAX_EXTRA + 1];
	if (cport < 0 || pport < 0 || cport == pport) {
		return 1;
	}
	snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", cport);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "default=%s", purl);
	const char *base[] = { etcd_path, "--name", "default", "--data-dir", e->data_dir,
		"--listen-client-urls", curl, "--advertise-client-urls", curl, "--listen-peer-urls",
		purl, "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster };
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		argv[n++] = base[i];
	}
	for (int i = 0; extra != NULL && extra[i] != NULL && i < MAX_EXTRA; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	tu_rmtree(e->data_dir);
	int fd = open(e->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "cannot create %s: %s\n", e->log_path, strerror(errno));
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
		execv(argv[0], (char *const *) argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	for (int64_t deadline = tu_now_ms() + bound_ms; tu_now_ms() < deadline;) {
		size_t len;
		char  *log   = tu_slurp(e->log_path, &len);
		bool   ready = log != NULL && strstr(log, "ready to serve client requests") != NULL;
		bool   inuse = log != NULL && strstr(log, "address already in use") != NULL;
		char  *ver   = log != NULL ? strstr(log, "etcd Version: ") : NULL;
		if (ver != NULL) {
			sscanf(ver + strlen("etcd Version: "), "%31s", e->version);
		}
		free(log);
		if (ready) {
			e->pid = pid;
			snprintf(e->url, sizeof(e->url), "%s", curl);
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
		tu_sleep_ms(10);
	}
	fprintf(stderr, "%s was not ready within %d ms\n", etcd_path, bound_ms);
	kill(pid, SIGKILL);
	reap(pid);
	return -1;
}

int
te_etcd_start(
    te_etcd *e, const char *etcd_path, const char *dir, const char *const *extra, int bound_ms)
{
	memset(e, 0, sizeof(*e));
	if (dir == NULL) {
		if (tu_mkdtemp(e->dir, sizeof(e->dir), "etcd") != 0) {
			fprintf(stderr, "cannot make a scratch directory: %s\n", strerror(errno));
			return -1;
		}
		e->own_dir = true;
	} else {
		snprintf(e->dir, sizeof(e->dir), "%s", dir);
	}
	snprintf(e->data_dir, sizeof(e->data_dir), "%s/data", e->dir);
	snprintf(e->log_path, sizeof(e->log_path), "%s/etcd.log", e->dir);
	for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
		int rv = start_once(e, etcd_path, extra, bound_ms);
		if (rv == 0) {
			return 0;
		}
		if (rv < 0) {
			break;
		}
		fprintf(stderr, "etcd lost a port to another process; retrying on new ones\n");
	}
	size_t len;
	char  *log = tu_slurp(e->log_path, &len);
	fprintf(stderr, "---- %s ----\n%s----\n", e->log_path, log != NULL ? log : "");
	free(log);
	te_etcd_remove(e);
	return -1;
}

int
te_etcd_stop(te_etcd *e)
{
	int st = -1;
	if (e->pid <= 0) {
		return -1;
	}
	kill(e->pid, SIGCONT); /* a test may have left it stopped */
	kill(e->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(e->pid, &st, WNOHANG);
		if (r == e->pid || (r < 0 && errno != EINTR)) {
			e->pid = 0;
			return st;
		}
		tu_sleep_ms(10);
	}
	kill(e->pid, SIGKILL);
	while (waitpid(e->pid, &st, 0) < 0 && errno == EINTR) { }
	e->pid = 0;
	return st;
}

/* Whether every thread of pid is in state T (stopped). */
static bool
all_stopped(pid_t pid)
{
	char           path[64];
	bool           all = true;
	struct dirent *d;
	snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
	DIR *dir = opendir(path);
	if (dir == NULL) {
		return false;
	}
	while (all && (d = readdir(dir)) != NULL) {
		char  stat[400], line[512] = "";
		FILE *fp;
		if (d->d_name[0] == '.') {
			continue;
		}
		snprintf(stat, sizeof(stat), "%s/%s/stat", path, d->d_name);
		if ((fp = fopen(stat, "r")) == NULL) {
			continue; /* a thread that ended */
		}
		if (fgets(line, sizeof(line), fp) != NULL) {
			const char *paren = strrchr(line, ')'); /* "tid (comm) S ..." */
			all               = paren != NULL && paren[1] == ' ' && paren[2] == 'T';
		}
		fclose(fp);
	}
	closedir(dir);
	return all;
}

int
te_etcd_pause(te_etcd *e)
{
	kill(e->pid, SIGSTOP);
	for (int i = 0; i < 500; i++) {
		if (all_stopped(e->pid)) {
			return 0;
		}
		tu_sleep_ms(10);
	}
	return -1;
}

void
te_etcd_resume(te_etcd *e)
{
	kill(e->pid, SIGCONT);
}

void
te_etcd_remove(te_etcd *e)
{
	tu_rmtree(e->own_dir ? e->dir : e->data_dir);
}

struct te_noleader {
	int         fd; /* listening */
	pthread_t   thread;
	atomic_bool stop;
	atomic_int  hits;
};

/* Reads one request (headers, then Content-Length bytes of body); its path, or "". */
static void
read_request(int c, char path[256])
{
	char   req[8192];
	size_t n = 0;
	path[0]  = 0;
	for (;;) {
		ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
		if (k <= 0) {
			return;
		}
		n += (size_t) k;
		req[n]          = 0;
		const char *end = strstr(req, "\r\n\r\n");
		if (end == NULL) {
			if (n == sizeof(req) - 1) {
				return;
			}
			continue;
		}
		const char *cl   = strcasestr(req, "content-length:");
		size_t      body = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
		if (n >= (size_t) (end + 4 - req) + body || n == sizeof(req) - 1) {
			sscanf(req, "%*s %255s", path);
			return;
		}
	}
}

static void *
noleader_main(void *arg)
{
	te_noleader      *nl       = arg;
	static const char unary[]  = "{\"error\":\"etcdserver: no leader\",\"message\":"
	                             "\"etcdserver: no leader\",\"code\":14}";
	static const char stream[] = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
	                             "\"etcdserver: no leader\",\"http_status\":\"Service "
	                             "Unavailable\"}}\n";
	while (!atomic_load(&nl->stop)) {
		struct pollfd p = { .fd = nl->fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0) {
			continue;
		}
		int c = accept4(nl->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			continue;
		}
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char path[256], head[256];
		read_request(c, path);
		bool        watch = strcmp(path, "/v3/watch") == 0;
		const char *body  = watch ? stream : unary;
		int         hl    = snprintf(head, sizeof(head),
		               "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
		                          "%zu\r\nConnection: close\r\n\r\n",
                    watch ? "200 OK" : "503 Service Unavailable", strlen(body));
		if (write(c, head, (size_t) hl) == hl && write(c, body, strlen(body)) > 0) {
			atomic_fetch_add(&nl->hits, 1);
		}
		close(c);
	}
	return NULL;
}

int
te_noleader_start(te_noleader **out, char *url, size_t len)
{
	te_noleader       *nl = calloc(1, sizeof(*nl));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t          al = sizeof(a);
	if (nl == NULL) {
		return -1;
	}
	nl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (nl->fd < 0 || bind(nl->fd, (struct sockaddr *) &a, sizeof(a)) != 0
	    || listen(nl->fd, 16) != 0 || getsockname(nl->fd, (struct sockaddr *) &a, &al) != 0
	    || pthread_create(&nl->thread, NULL, noleader_main, nl) != 0) {
		if (nl->fd >= 0) {
			close(nl->fd);
		}
		free(nl);
		return -1;
	}
	snprintf(url, len, "http://127.0.0.1:%d", ntohs(a.sin_port));
	*out = nl;
	return 0;
}

int
te_noleader_hits(te_noleader *nl)
{
	return atomic_load(&nl->hits);
}

void
te_noleader_stop(te_noleader *nl)
{
	if (nl == NULL) {
		return;
	}
	atomic_store(&nl->stop, true);
	pthread_join(nl->thread, NULL);
	close(nl->fd);
	free(nl);
}
