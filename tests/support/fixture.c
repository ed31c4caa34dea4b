/* The daemon-plus-client fixture watch, view, client and wait tests share. */
#include "support/fixture.h"

#include <stddef.h>

#include "support/testutil.h"

int
tf_client_open(dsc_client **out, const char *url)
{
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	return dsc_client_open(out, url, &o);
}

int
tf_start(tf_fixture *f, bool sync, const char *const *extra_args)
{
	f->c = NULL;
	int rv
	    = sync ? td_daemon_start_sync(&f->d, extra_args) : td_daemon_start(&f->d, extra_args);
	if (rv != 0) {
		return -1;
	}
	if (tf_client_open(&f->c, f->d.url) != 0) {
		td_daemon_kill(&f->d);
		return -1;
	}
	return 0;
}

int
tf_stop(tf_fixture *f)
{
	dsc_client_close(f->c);
	f->c = NULL;
	return td_daemon_stop(&f->d) == 0 ? 0 : -1;
}
