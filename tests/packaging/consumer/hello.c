/*
 * An outside program of libdiscovery, built against an installed prefix or
 * the installed -dev package (tests/packaging): registers one instance,
 * resolves it back, and prints it. Usage: hello URL
 */
#include <discovery/discovery.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	dsc_client        *c    = NULL;
	dsc_instance      *inst = NULL;
	dsc_client_options opts;
	dsc_error          err = { 0 };
	int                rv;

	if (argc != 2) {
		fprintf(stderr, "usage: hello URL\n");
		return 2;
	}
	dsc_client_options_init(&opts);
	opts.require_connection = true;
	if ((rv = dsc_client_open(&c, argv[1], &opts)) != 0) {
		fprintf(stderr, "hello: open %s: %s\n", argv[1], dsc_strerror(rv));
		return 1;
	}
	/* With a TTL the server waits for heartbeats instead of polling it. */
	dsc_registration reg
	    = { .service = "hello", .endpoint = "http://127.0.0.1:9", .ttl_ms = 60000 };
	if ((rv = dsc_register(c, &reg, NULL, &err)) != 0
	    || (rv = dsc_resolve(c, "hello", false, &inst, &err)) != 0) {
		fprintf(stderr, "hello: %s: %s\n", dsc_strerror(rv), err.message);
		dsc_client_close(c);
		return 1;
	}
	printf("libdiscovery %s (built with %s): hello at %s\n", dsc_version(), DSC_VERSION_STRING,
	    inst->endpoint);
	rv = strcmp(inst->endpoint, reg.endpoint) == 0 ? 0 : 1;
	dsc_instance_free(inst);
	dsc_client_close(c);
	return rv;
}
