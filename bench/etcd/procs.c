/* etcd and etcdload as child processes of scenario 7. */
#include "procs.h"

#include "support/etcd.h"
#include "support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int
bn_etcd_start(bn_etcd *e, const char *etcd_path, const char *out_dir)
{
	te_etcd t;
	memset(e, 0, sizeof(*e));
	snprintf(e->data_dir, sizeof(e->data_dir), "%s/etcd", out_dir);
	if (mkdir(e->data_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "cannot create %s: %s\n", e->data_dir, strerror(errno));
		return -1;
	}
	/* The test kit's starter (tests/support/etcd.c); a ready wait of 30 s as before. */
	if (te_etcd_start(&t, etcd_path, e->data_dir, NULL, 30000) != 0) {
		return -1;
	}
	e->child.pid = t.pid;
	snprintf(e->child.url, sizeof(e->child.url), "%s", t.url);
	snprintf(e->child.log_path, sizeof(e->child.log_path), "%s", t.log_path);
	snprintf(e->version, sizeof(e->version), "%s", t.version);
	return 0;
}

void
bn_etcd_remove(bn_etcd *e)
{
	char data[600];
	snprintf(data, sizeof(data), "%s/data", e->data_dir);
	tu_rmtree(data); /* etcd.log stays with the results */
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
