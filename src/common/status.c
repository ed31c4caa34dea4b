/* One table pairs each wire status with its dsc_err; both directions use it. */
#include "common/status.h"

#include <stddef.h>

static const struct {
	Discovery__V1__StatusCode status;
	int                       err;
} status_map[] = {
	{ DISCOVERY__V1__STATUS_CODE__STATUS_OK, DSC_OK },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, DSC_EINVAL },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_NOT_FOUND, DSC_ENOTFOUND },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED, DSC_EPERM },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, DSC_ELIMIT },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_FAILED_PRECONDITION, DSC_ESTATE },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED, DSC_ENOTSUP },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL, DSC_EINTERNAL },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_UNAVAILABLE, DSC_EUNAVAILABLE },
	{ DISCOVERY__V1__STATUS_CODE__STATUS_UNAUTHENTICATED, DSC_EAUTH },
	/* Server-side resource failures surface to clients as INTERNAL. */
	{ DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL, DSC_ENOMEM },
};

#define STATUS_MAP_LEN (sizeof(status_map) / sizeof(status_map[0]))

Discovery__V1__StatusCode
dsi_status_from_err(int err)
{
	for (size_t i = 0; i < STATUS_MAP_LEN; i++) {
		if (status_map[i].err == err) {
			return status_map[i].status;
		}
	}
	return DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL;
}

int
dsi_err_from_status(Discovery__V1__StatusCode st)
{
	for (size_t i = 0; i < STATUS_MAP_LEN; i++) {
		if (status_map[i].status == st) {
			return status_map[i].err;
		}
	}
	/* A status from a newer server: still a failure, never success. */
	return DSC_EINTERNAL;
}
