/* Cluster-mode nodes for tests (cluster.h). */
#include "support/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testutil.h"

static int prefix_seq; /* per process: prefixes differ between the tests of one binary */

int
tc_node_start(tc_cluster *c, int i)
{
	char        name[16], listen[160], publish[160];
	const char *args[40];
	int         n = 0;

	snprintf(name, sizeof(name), "node%d", i);
	args[n++] = "--cluster";
	args[n++] = c->cluster;
	args[n++] = "--node-name";
	args[n++] = name;
	args[n++] = "--cluster-prefix";
	args[n++] = c->prefix;
	args[n++] = "--data";
	args[n++] = ":memory:";
	if (c->d[i].url[0] != 0) {
		/* The same URLs as before: clients' failover lists name them. */
		snprintf(listen, sizeof(listen), "%s", c->d[i].url);
		snprintf(publish, sizeof(publish), "%s", c->d[i].pub_url);
		args[n++] = "--listen";
		args[n++] = listen;
		args[n++] = "--publish";
		args[n++] = publish;
	}
	/*
	 * Under valgrind a node's etcd calls (a TLS handshake first of all) run
	 * many times slower: their bound stretches as the tests' do. Not under
	 * the sanitizers: the fault tests time their faults against it.
	 */
	char        stretched[16];
	const char *wrap = getenv("DISCOVERY_TEST_WRAPPER");
	if (wrap != NULL && wrap[0] != 0) {
		int s = 5 * tu_slowdown();
		snprintf(stretched, sizeof(stretched), "%d", s < 60 ? s : 60);
		args[n++] = "--cluster-timeout";
		args[n++] = stretched;
	}
	for (int k = 0; c->extra != NULL && c->extra[k] != NULL && n < 39; k++) {
		args[n++] = c->extra[k];
	}
	for (int k = 0; c->node_extra[i] != NULL && c->node_extra[i][k] != NULL && n < 39; k++) {
		args[n++] = c->node_extra[i][k];
	}
	args[n] = NULL;
	return td_daemon_start_sync(&c->d[i], args);
}

int
tc_cluster_start(tc_cluster *c, int n, const char *etcd_urls, const char *const *extra)
{
	size_t len = 0;

	const char *const *node_extra[TC_MAX_NODES];
	memcpy(node_extra, c->node_extra, sizeof(node_extra)); /* the caller's, kept */
	memset(c, 0, sizeof(*c));
	memcpy(c->node_extra, node_extra, sizeof(node_extra));
	c->extra = extra;
	if (n < 1 || n > TC_MAX_NODES) {
		fprintf(stderr, "tc_cluster_start: %d nodes (1 to %d)\n", n, TC_MAX_NODES);
		return -1;
	}
	c->n = n;
	snprintf(c->prefix, sizeof(c->prefix), "/t%d-%d/", (int) getpid(), ++prefix_seq);
	/* https:// members (etcd_cluster.h's TLS mode): etcds:// */
	const char *scheme = strncmp(etcd_urls, "https://", 8) == 0 ? "etcds://" : "etcd://";
	len                = (size_t) snprintf(c->cluster, sizeof(c->cluster), "%s", scheme);
	for (const char *p = etcd_urls; *p != 0 && len < sizeof(c->cluster);) {
		size_t m = strcspn(p, ",");
		size_t s = strncmp(p, "http://", 7) == 0 ? 7
		    : strncmp(p, "https://", 8) == 0     ? 8
		                                         : 0;
		p += s;
		m -= s;
		len += (size_t) snprintf(c->cluster + len, sizeof(c->cluster) - len, "%s%.*s",
		    len > strlen(scheme) ? "," : "", (int) m, p);
		p += m + (p[m] == ',');
	}
	len = 0;
	for (int i = 0; i < n; i++) {
		if (tc_node_start(c, i) != 0) {
			tc_cluster_stop(c);
			return -1;
		}
		len += (size_t) snprintf(
		    c->urls + len, sizeof(c->urls) - len, "%s%s", i > 0 ? "," : "", c->d[i].url);
	}
	return 0;
}

int
tc_cluster_stop(tc_cluster *c)
{
	int bad = 0;
	for (int i = 0; i < c->n; i++) {
		if (c->d[i].pid > 0) {
			bad += td_daemon_stop(&c->d[i]) != 0;
		}
	}
	return bad;
}
