/* How libdiscovery reports a failure to its caller: a code, and a message in dsc_error. */
#ifndef DSI_CLIENT_ERROR_H
#define DSI_CLIENT_ERROR_H

#include <discovery/discovery.h>

/* Records a failure in err, when the caller asked for it (err may be NULL); returns code. */
int dsi_fail(dsc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
