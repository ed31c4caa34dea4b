/* discoveryd: parse flags, build the server, wait for a signal, tear down. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>

#include "options.h"
#include "server.h"

int
main(int argc, char **argv)
{
	dsi_server_options opts;
	dsi_server        *srv = NULL;
	char               why[512];
	sigset_t           sigs;
	int                sig = 0, rv;

	dsi_options_default(&opts);
	rv = dsi_options_parse(&opts, argc, argv, stdout, why, sizeof(why));
	if (rv == DSI_OPTIONS_EXIT) {
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "discoveryd: %s\nTry 'discoveryd --help'.\n", why);
		return 2;
	}

	/* libcurl's global state must be set up before any thread exists. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "discoveryd: cannot initialize libcurl\n");
		return 1;
	}

	/* Block the shutdown signals before any thread starts, then wait for one. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	why[0] = 0;
	if ((rv = dsi_server_create(&srv, &opts, stderr, why, sizeof(why))) != 0
	    || (rv = dsi_server_start(srv)) != 0) {
		fprintf(stderr, "discoveryd: cannot start: %s\n", why[0] ? why : dsc_strerror(rv));
		dsi_server_destroy(srv);
		curl_global_cleanup();
		return 1;
	}
	sigwait(&sigs, &sig);
	dsi_log log = { opts.log_level, stderr };
	dsi_info(&log, "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	dsi_server_stop(srv);
	dsi_server_destroy(srv);
	dsi_info(&log, "stopped");
	curl_global_cleanup();
	return 0;
}
