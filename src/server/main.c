/* discoveryd: load the configuration, build the server, serve until a signal, tear down. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/error.h"
#include "server/boot.h"
#include "server/config.h"
#include "server/logjson.h"
#include "server/reload.h"
#include "server/server.h"

extern char **environ;

/*
 * --ready-fd: one line per bound URL, then "ready", then EOF (docs/ready-fd.md).
 * A reader that has gone away costs a warning, never the server.
 */
static void
report_ready(dsi_server *srv, const dsi_server_options *o, const dsi_log *log)
{
	char   buf[4096];
	size_t n = 0;
	for (size_t i = 0; i < o->n_listen && n < sizeof(buf); i++) {
		n += (size_t) snprintf(
		    buf + n, sizeof(buf) - n, "listen %s\n", dsi_server_url(srv, i));
	}
	const char *admin = dsi_server_admin_url(srv);
	if (n < sizeof(buf) && admin != NULL) {
		n += (size_t) snprintf(buf + n, sizeof(buf) - n, "admin %s\n", admin);
	}
	if (n < sizeof(buf)) {
		n += (size_t) snprintf(
		    buf + n, sizeof(buf) - n, "publish %s\nready\n", dsi_server_publish_url(srv));
	}
	n = n < sizeof(buf) ? n : sizeof(buf) - 1; /* 16 listeners fit: never in practice */
	for (size_t done = 0; done < n;) {
		ssize_t w = write(o->ready_fd, buf + done, n - done);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			dsi_warn(log, "--ready-fd %d: %s", o->ready_fd, strerror(errno));
			break;
		}
		done += (size_t) w;
	}
	close(o->ready_fd);
}

/*
 * Every connection, data file and health check needs a descriptor: take
 * all the hard limit allows, and say what that is.
 */
static void
raise_fd_limit(const dsi_log *log)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		dsi_warn(log, "cannot read the file descriptor limit: %s", strerror(errno));
		return;
	}
	rlim_t soft = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			dsi_warn(log,
			    "cannot raise the file descriptor limit from %llu to %llu: %s",
			    (unsigned long long) soft, (unsigned long long) rl.rlim_max,
			    strerror(errno));
			return;
		}
	}
	dsi_info(log, "file descriptor limit %llu (was %llu; hard limit %llu)",
	    (unsigned long long) rl.rlim_cur, (unsigned long long) soft,
	    (unsigned long long) rl.rlim_max);
}

int
main(int argc, char **argv)
{
	dsi_config  cfg;
	dsi_server *srv = NULL;
	char        why[768];
	sigset_t    sigs;
	int         sig = 0, rv;

	rv = dsi_config_load(&cfg, argc, argv, environ, stdout, why, sizeof(why));
	if (rv == DSI_OPTIONS_EXIT) {
		dsi_config_free(&cfg);
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "discoveryd: %s\nTry 'discoveryd --help'.\n", why);
		dsi_config_free(&cfg);
		return 2;
	}
	dsi_log   log  = { .level = cfg.options.log_level, .out = stderr, .queue = NULL };
	dsi_logq *logq = NULL;
	if (cfg.options.log_format == DSI_LOG_JSON) {
		log.format = dsi_log_format_json;
	}
	for (size_t i = 0; i < cfg.n_warnings; i++) {
		dsi_warn(&log, "%s", cfg.warnings[i]);
	}
	if (cfg.print_config) {
		dsi_config_print(&cfg, stdout);
		dsi_config_free(&cfg);
		return 0;
	}
	if (cfg.options.ready_fd >= 0 && fcntl(cfg.options.ready_fd, F_GETFD) < 0) {
		fprintf(stderr, "discoveryd: --ready-fd %d: not an open descriptor\n",
		    cfg.options.ready_fd);
		dsi_config_free(&cfg);
		return 2;
	}

	raise_fd_limit(&log);

	/* libcurl's global state must be set up before any thread exists. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "discoveryd: cannot initialize libcurl\n");
		dsi_config_free(&cfg);
		return 1;
	}

	/* Block the signals we wait for before any thread starts: shutdown, and SIGHUP (reload). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit, a write must fail (and be answered) rather than kill us. */
	signal(SIGXFSZ, SIG_IGN);
	/* A stalled stderr must never stall serving: lines go through a queue (or, failing that,
	 * straight out). */
	if (dsi_logq_create(&logq, fileno(stderr), DSI_LOGQ_BYTES) == 0) {
		dsi_logq_set_format(logq, log.format);
		log.queue = logq;
	}

	why[0] = 0;
	if ((rv = dsi_server_create(&srv, &cfg.options, &log, why, sizeof(why))) != 0) {
		dsi_logq_flush(logq, DSI_LOGQ_FLUSH_MS);
		fprintf(stderr, "discoveryd: cannot start: %s\n", why[0] ? why : dsi_strerror(rv));
		/* Bad TLS files and unusable data files are to be fixed like bad configuration. */
		rv = rv == DSC_EINVAL || rv == DSC_ESTATE ? 2 : 1;
	} else {
		/* Lines already queued come before the start-up registrations' own messages. */
		dsi_logq_flush(logq, DSI_LOGQ_FLUSH_MS);
		if ((rv = dsi_boot_run(srv, &cfg, stderr)) == 0
		    && (rv = dsi_server_start(srv)) != 0) {
			dsi_logq_flush(logq, DSI_LOGQ_FLUSH_MS);
			fprintf(stderr, "discoveryd: cannot start: %s\n", dsi_strerror(rv));
			rv = 1;
		}
	}
	if (rv != 0) {
		dsi_server_destroy(srv);
		dsi_logq_destroy(logq, DSI_LOGQ_FLUSH_MS);
		curl_global_cleanup();
		dsi_config_free(&cfg);
		return rv;
	}
	dsi_info(&log, "profile %s; %zu services from the configuration", cfg.profile, cfg.n_boot);
	if (cfg.options.ready_fd >= 0) {
		report_ready(srv, &cfg.options, &log);
	}
	dsi_reload *reload = NULL;
	if (dsi_reload_create(&reload, srv, &cfg, argc, argv, &log) != 0) {
		dsi_warn(&log, "out of memory: SIGHUP cannot reload the configuration");
	}
	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
		dsi_info(&log, "SIGHUP received: reloading the configuration");
		if (reload != NULL) {
			dsi_reload_run(reload, environ);
		}
	}
	dsi_info(&log, "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	dsi_server_stop(srv);
	dsi_server_destroy(srv);
	dsi_reload_destroy(reload); /* after the server: it may have read a reload's token */
	dsi_info(&log, "stopped");
	dsi_logq_destroy(logq, DSI_LOGQ_FLUSH_MS);
	curl_global_cleanup();
	dsi_config_free(&cfg);
	return 0;
}
