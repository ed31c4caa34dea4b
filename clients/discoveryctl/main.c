/*
 * discoveryctl: a libdiscovery call or two per run, for shells and scripts.
 * Parse the command line into a ctl, open a client, run the command's row
 * of the table, and turn the outcome into output and an exit status.
 */
#include <discovery/discovery.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "discoveryctl/args.h"
#include "discoveryctl/commands.h"
#include "discoveryctl/ctl.h"
#include "discoveryctl/output.h"

/* Opens c->client on --server; returns an EXIT_*, having said why on failure. */
static int
open_client(ctl *c)
{
	dsc_client_options opts;
	int                rv;

	ctl_client_options(c, &opts);
	/* One call, then exit: a dead server should fail now, not after the timeout. */
	opts.require_connection = true;
	rv                      = dsc_client_open(&c->client, c->server, &opts);
	if (rv == DSC_EINVAL) {
		ctl_say("--server %s: not a URL discoveryctl can dial", c->server);
		return EXIT_USAGE;
	}
	if (rv != 0) {
		if (rv == DSC_EPROTO) {
			ctl_say(
			    "cannot connect to %s: the peer speaks another protocol (the handshake "
			    "failed); --server takes discoveryd's REQ/REP URL (--listen, port 7700 "
			    "by "
			    "default), not its --publish URL",
			    c->server);
		} else {
			ctl_say("cannot connect to %s: %s", c->server, dsc_strerror(rv));
		}
		ctl_connect_hint(c, c->server, rv);
		return ctl_exit_for(rv);
	}
	dsc_client_set_min_revision(c->client, c->min_revision);
	return EXIT_OK;
}

/* Flushes stdout: output that never arrived is a failure, even after a good call. */
static int
finish(int status)
{
	int e = fflush(stdout) != 0 ? errno : 0;

	if (e != 0 || ferror(stdout)) {
		ctl_say("cannot write output: %s", e != 0 ? strerror(e) : "write error");
		return status == EXIT_OK ? EXIT_LOCAL : status;
	}
	return status;
}

int
main(int argc, char **argv)
{
	ctl  c = { .timeout_ms = DEFAULT_TIMEOUT_MS };
	char why[512];
	int  status;

	switch (ctl_parse(&c, argc, argv, why, sizeof(why))) {
	case PARSE_HELP:
		ctl_print_usage(stdout);
		return finish(EXIT_OK);
	case PARSE_VERSION:
		printf("discoveryctl %s\n", DSC_VERSION_STRING);
		return finish(EXIT_OK);
	case PARSE_ERROR:
		ctl_print_usage_error(&c, why);
		return EXIT_USAGE;
	default:
		break;
	}
	if (c.cmd->no_client || (status = open_client(&c)) == EXIT_OK) {
		status = c.cmd->run(&c);
	}
	dsc_client_close(c.client);
	return finish(status);
}
