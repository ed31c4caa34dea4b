/* An n-member etcd cluster on loopback: ports, peer list, readiness, the leader, faults. */
#include "support/etcd_cluster.h"

#include "cluster/etcd.h"
#include "support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_ATTEMPTS 3
#define URL_LEN        40 /* "https://127.0.0.1:65535" and room */

/* One member: a te_etcd (pid, client URL, directories, log) plus what a cluster adds. */
typedef struct te_member {
	te_etcd   etcd;              /* etcd.dir is <cluster dir>/m<i> */
	char      name[16];          /* m<i> */
	char      peer_url[URL_LEN]; /* http://127.0.0.1:PEER */
	uint64_t  id;                /* etcd's member ID, from its status */
	size_t    log_from;          /* readiness is looked for after this offset */
	bool      paused;            /* SIGSTOPped by te_cluster_pause */
	dsi_etcd *status; /* owned; a client of this member alone, for te_cluster_leader */
} te_member;

struct te_cluster {
	int       n;
	char      dir[320];                                /* scratch directory, removed by stop */
	char      initial[TE_CLUSTER_MAX * (URL_LEN + 8)]; /* --initial-cluster */
	char      token[48];                               /* --initial-cluster-token */
	char      endpoints[TE_CLUSTER_MAX * (URL_LEN + 1)];
	te_member m[TE_CLUSTER_MAX];
	bool      tls_on;
	te_tls    tls; /* when tls_on; the caller's strings */
};

static void
reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) { }
}

/* Forks member i with the cluster's flags; its log is appended to. 0 or -1. */
static int
spawn(te_cluster *cl, int i)
{
	te_member  *m = &cl->m[i];
	struct stat st;
	const char *argv[40] = { te_etcd_path(), "--name", m->name, "--data-dir", m->etcd.data_dir,
		"--listen-client-urls", m->etcd.url, "--advertise-client-urls", m->etcd.url,
		"--listen-peer-urls", m->peer_url, "--initial-advertise-peer-urls", m->peer_url,
		"--initial-cluster", cl->initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", cl->token, "--pre-vote=true", "--heartbeat-interval",
		"100", "--election-timeout", "1500",
		"--experimental-watch-progress-notify-interval", "500ms", NULL };
	if (cl->tls_on) {
		size_t      n   = 0;
		const char *t[] = { "--cert-file", cl->tls.cert, "--key-file", cl->tls.key,
			"--trusted-ca-file", cl->tls.ca, "--client-cert-auth", NULL };
		while (argv[n] != NULL) {
			n++;
		}
		memcpy(argv + n, t, sizeof(t));
	}
	int fd = open(m->etcd.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "cannot open %s: %s\n", m->etcd.log_path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	m->log_from = (size_t) st.st_size;
	pid_t pid   = fork();
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
	m->etcd.pid = pid;
	m->paused   = false;
	return 0;
}

/* Whether member m's log, since its last spawn, holds text; notes etcd's version on the way. */
static bool
log_has(te_member *m, const char *text)
{
	size_t len;
	char  *log   = tu_slurp(m->etcd.log_path, &len);
	bool   found = log != NULL && len >= m->log_from && strstr(log + m->log_from, text) != NULL;
	char  *ver   = log != NULL ? strstr(log, "etcd Version: ") : NULL;
	if (ver != NULL) {
		sscanf(ver + strlen("etcd Version: "), "%31s", m->etcd.version);
	}
	free(log);
	return found;
}

/*
 * Waits until the members in [from, to) are ready: 0; 1 when one exited
 * because a port was taken (retry on new ones); -1 otherwise (said why).
 */
static int
wait_ready(te_cluster *cl, int from, int to, int bound_ms)
{
	for (int64_t deadline = tu_now_ms() + bound_ms;;) {
		bool all = true;
		for (int i = from; i < to; i++) {
			te_member *m = &cl->m[i];
			int        st;
			if (log_has(m, "ready to serve client requests")) {
				continue;
			}
			all = false;
			if (waitpid(m->etcd.pid, &st, WNOHANG) == m->etcd.pid) {
				m->etcd.pid = 0;
				if (log_has(m, "address already in use")) {
					return 1;
				}
				fprintf(stderr, "etcd member %s exited early (status %d)\n",
				    m->name, st);
				return -1;
			}
		}
		if (all) {
			return 0;
		}
		if (tu_now_ms() >= deadline) {
			fprintf(stderr, "etcd members were not ready within %d ms\n", bound_ms);
			return -1;
		}
		tu_sleep_ms(20);
	}
}

static void
kill_all(te_cluster *cl)
{
	for (int i = 0; i < cl->n; i++) {
		if (cl->m[i].etcd.pid > 0) {
			kill(cl->m[i].etcd.pid, SIGKILL);
			reap(cl->m[i].etcd.pid);
			cl->m[i].etcd.pid = 0;
		}
	}
}

/* n distinct free ports into ports; 0 or -1. */
static int
free_ports(int *ports, int n)
{
	for (int i = 0; i < n; i++) {
		ports[i] = te_free_port();
		for (int j = 0; j < i && ports[i] > 0; j++) {
			if (ports[j] == ports[i]) {
				ports[i] = 0;
			}
		}
		if (ports[i] < 0) {
			return -1;
		}
		if (ports[i] == 0) {
			i--; /* the kernel gave one out twice: ask again */
		}
	}
	return 0;
}

/* One attempt on fresh ports: 0 every member ready, 1 lost a port (retry), -1 failed. */
static int
start_once(te_cluster *cl, int attempt)
{
	int    ports[2 * TE_CLUSTER_MAX];
	size_t off = 0, eoff = 0;
	if (free_ports(ports, 2 * cl->n) != 0) {
		return -1;
	}
	snprintf(cl->token, sizeof(cl->token), "te-%d-%d", (int) getpid(), attempt);
	for (int i = 0; i < cl->n; i++) {
		te_member *m = &cl->m[i];
		snprintf(m->etcd.url, sizeof(m->etcd.url), "%s://127.0.0.1:%d",
		    cl->tls_on ? "https" : "http", ports[2 * i]);
		snprintf(m->peer_url, sizeof(m->peer_url), "http://127.0.0.1:%d", ports[2 * i + 1]);
		off += (size_t) snprintf(cl->initial + off, sizeof(cl->initial) - off, "%s%s=%s",
		    i > 0 ? "," : "", m->name, m->peer_url);
		eoff += (size_t) snprintf(cl->endpoints + eoff, sizeof(cl->endpoints) - eoff,
		    "%s%s", i > 0 ? "," : "", m->etcd.url);
		tu_rmtree(m->etcd.data_dir);
		unlink(m->etcd.log_path);
	}
	for (int i = 0; i < cl->n; i++) {
		if (spawn(cl, i) != 0) {
			kill_all(cl);
			return -1;
		}
	}
	int rv = wait_ready(cl, 0, cl->n, TU_LIVENESS_MS);
	if (rv != 0) {
		kill_all(cl);
	}
	return rv;
}

/* Opens each member's status client and learns its member ID. 0 or -1. */
static int
learn_ids(te_cluster *cl)
{
	for (int i = 0; i < cl->n; i++) {
		te_member           *m = &cl->m[i];
		dsi_etcd_status_resp st;
		dsc_error            err;
		int                  rv  = -1;
		dsi_etcd_tls         tls = { .ca_file = cl->tls.ca,
			        .cert_file            = cl->tls.client_cert,
			        .key_file             = cl->tls.client_key };
		if (m->status == NULL
		    && dsi_etcd_open_tls(&m->status, m->etcd.url, tu_stretch_ms(1000),
		           cl->tls_on ? &tls : NULL, &err)
		        != 0) {
			fprintf(stderr, "dsi_etcd_open %s: %s\n", m->etcd.url, err.message);
			return -1;
		}
		/* Ready members answer at once; a busy machine may still need a retry. */
		for (int64_t deadline = tu_now_ms() + TU_LIVENESS_MS; rv != 0;) {
			if ((rv = dsi_etcd_status(m->status, &st, &err)) == 0) {
				m->id = st.member_id;
			} else if (tu_now_ms() >= deadline) {
				fprintf(stderr, "status of %s: %s\n", m->etcd.url, err.message);
				return -1;
			} else {
				tu_sleep_ms(50);
			}
		}
	}
	return 0;
}

int
te_cluster_start(te_cluster **out, int n)
{
	return te_cluster_start_tls(out, n, NULL);
}

int
te_cluster_start_tls(te_cluster **out, int n, const te_tls *tls)
{
	te_cluster *cl = calloc(1, sizeof(*cl));
	int         rv = -1;
	if (cl == NULL || n < 1 || n > TE_CLUSTER_MAX || te_etcd_path() == NULL) {
		fprintf(stderr, "te_cluster_start: no etcd, bad size %d, or out of memory\n", n);
		free(cl);
		return -1;
	}
	cl->n = n;
	if (tls != NULL) {
		cl->tls_on = true;
		cl->tls    = *tls;
	}
	if (tu_mkdtemp(cl->dir, sizeof(cl->dir), "etcdcl") != 0) {
		fprintf(stderr, "cannot make a scratch directory: %s\n", strerror(errno));
		free(cl);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		te_member *m = &cl->m[i];
		/* Built in a local first: gcc's -Wrestrict sees cl's fields as one object. */
		char dir[sizeof(m->etcd.dir)];
		snprintf(m->name, sizeof(m->name), "m%d", i);
		snprintf(dir, sizeof(dir), "%.380s/m%d", cl->dir, i);
		memcpy(m->etcd.dir, dir, sizeof(dir));
		snprintf(m->etcd.data_dir, sizeof(m->etcd.data_dir), "%s/data", dir);
		snprintf(m->etcd.log_path, sizeof(m->etcd.log_path), "%s/etcd.log", dir);
		if (mkdir(m->etcd.dir, 0700) != 0) {
			fprintf(stderr, "cannot make %s: %s\n", m->etcd.dir, strerror(errno));
			goto fail;
		}
	}
	for (int attempt = 0; attempt < START_ATTEMPTS && rv != 0; attempt++) {
		if ((rv = start_once(cl, attempt)) < 0) {
			goto fail;
		}
		if (rv > 0) {
			fprintf(
			    stderr, "etcd lost a port to another process; retrying on new ones\n");
		}
	}
	if (rv != 0 || learn_ids(cl) != 0 || te_cluster_wait_leader(cl, -1, TU_LIVENESS_MS) < 0) {
		goto fail;
	}
	*out = cl;
	return 0;
fail:
	te_cluster_dump_logs(cl);
	te_cluster_stop(cl);
	return -1;
}

int
te_cluster_size(const te_cluster *cl)
{
	return cl->n;
}

const char *
te_cluster_endpoints(const te_cluster *cl)
{
	return cl->endpoints;
}

const char *
te_cluster_member_url(const te_cluster *cl, int i)
{
	return cl->m[i].etcd.url;
}

uint64_t
te_cluster_member_id(const te_cluster *cl, int i)
{
	return cl->m[i].id;
}

/* Whether member i runs and is not paused. */
static bool
up(const te_cluster *cl, int i)
{
	return cl->m[i].etcd.pid > 0 && !cl->m[i].paused;
}

int
te_cluster_leader(te_cluster *cl)
{
	uint64_t named = 0;
	for (int i = 0; i < cl->n; i++) {
		dsi_etcd_status_resp st;
		dsc_error            err;
		if (!up(cl, i)) {
			continue;
		}
		if (dsi_etcd_status(cl->m[i].status, &st, &err) != 0 || st.leader == 0
		    || (named != 0 && st.leader != named)) {
			return -1; /* no leader, or the members disagree: an election is under way
			            */
		}
		named = st.leader;
	}
	for (int i = 0; i < cl->n; i++) {
		if (named != 0 && cl->m[i].id == named) {
			return up(cl, i) ? i : -1; /* it answered above, naming itself */
		}
	}
	return -1;
}

int
te_cluster_wait_leader(te_cluster *cl, int not, int bound_ms)
{
	for (int64_t deadline = tu_now_ms() + bound_ms;;) {
		int l = te_cluster_leader(cl);
		if (l >= 0 && l != not ) {
			return l;
		}
		if (tu_now_ms() >= deadline) {
			return -1;
		}
		tu_sleep_ms(50);
	}
}

int
te_cluster_kill(te_cluster *cl, int i)
{
	te_member *m = &cl->m[i];
	if (m->etcd.pid <= 0) {
		return -1;
	}
	kill(m->etcd.pid, SIGKILL);
	reap(m->etcd.pid);
	m->etcd.pid = 0;
	m->paused   = false;
	return 0;
}

int
te_cluster_restart(te_cluster *cl, int i)
{
	if (cl->m[i].etcd.pid > 0 || spawn(cl, i) != 0) {
		return -1;
	}
	int rv = wait_ready(cl, i, i + 1, TU_LIVENESS_MS);
	if (rv != 0) {
		fprintf(stderr, "etcd member %s did not come back%s\n", cl->m[i].name,
		    rv > 0 ? ": another process took one of its ports" : "");
		te_cluster_kill(cl, i);
		return -1;
	}
	return 0;
}

int
te_cluster_pause(te_cluster *cl, int i)
{
	te_member *m = &cl->m[i];
	if (m->etcd.pid <= 0) {
		return -1;
	}
	m->paused = true; /* even if the wait fails: it was sent SIGSTOP */
	return te_etcd_pause(&m->etcd);
}

int
te_cluster_resume(te_cluster *cl, int i)
{
	te_member *m = &cl->m[i];
	if (m->etcd.pid <= 0) {
		return -1;
	}
	te_etcd_resume(&m->etcd);
	m->paused = false;
	return 0;
}

void
te_cluster_dump_logs(const te_cluster *cl)
{
	for (int i = 0; i < cl->n; i++) {
		size_t len;
		char  *log = tu_slurp(cl->m[i].etcd.log_path, &len);
		fprintf(stderr, "---- %s ----\n%s----\n", cl->m[i].etcd.log_path,
		    log != NULL ? log : "");
		free(log);
	}
}

void
te_cluster_stop(te_cluster *cl)
{
	if (cl == NULL) {
		return;
	}
	/*
	 * One at a time: a leader that stops hands leadership over first, and
	 * waits for the election timeout in vain if every follower is stopping too.
	 */
	for (int i = 0; i < cl->n; i++) {
		te_etcd_stop(&cl->m[i].etcd);
		dsi_etcd_close(cl->m[i].status);
	}
	tu_rmtree(cl->dir);
	free(cl);
}
