/* dsc_version: the generated version, as libdiscovery was built with it. */
#include <discovery/version.h>

const char *
dsc_version(void)
{
	return DSC_VERSION_STRING;
}
