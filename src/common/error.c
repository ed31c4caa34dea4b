/* The single expansion of DSC_ERRORS into messages, and the health names. */
#include "common/error.h"

const char *
dsi_strerror(int err)
{
	switch (err) {
#define DSC_ERR_CASE(name, value, msg) \
	case value:                    \
		return msg;
		DSC_ERRORS(DSC_ERR_CASE)
#undef DSC_ERR_CASE
	}
	return "unknown error";
}

const char *
dsi_health_name(dsc_health h)
{
	switch (h) {
	case DSC_HEALTH_HEALTHY:
		return "healthy";
	case DSC_HEALTH_UNHEALTHY:
		return "unhealthy";
	case DSC_HEALTH_UNKNOWN:
		break;
	}
	return "unknown";
}
