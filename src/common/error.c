/* The single table behind dsc_strerror and dsc_health_name. */
#include <discovery/discovery.h>

const char *
dsc_strerror(int err)
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
dsc_health_name(dsc_health h)
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
