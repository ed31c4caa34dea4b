/* --print-config: the effective configuration, and where each value came from. */
#include <stdio.h>
#include <string.h>

#include "server/config.h"

#ifndef DISCOVERY_VERSION
#define DISCOVERY_VERSION "0.0.0"
#endif

void
dsi_config_value(const dsi_config *c, dsi_setting s, char *value, size_t len)
{
	const dsi_server_options *o    = &c->options;
	const dsi_setting_info   *info = dsi_setting_get(s);
	value[0]                       = 0;
	if (s == DSI_SET_LISTEN) {
		for (size_t i = 0; i < o->n_listen; i++) {
			size_t used = strlen(value);
			snprintf(value + used, len - used, "%s%s", i ? "," : "", o->listen[i]);
		}
	} else if (s == DSI_SET_REQUIRE) {
		for (size_t i = 0; i < o->n_require; i++) {
			size_t used = strlen(value);
			snprintf(value + used, len - used, "%s%s", i ? "," : "", o->require[i]);
		}
		if (o->n_require == 0) {
			snprintf(value, len, "none");
		}
	} else if (s == DSI_SET_ENDPOINT_SCHEMES) {
		static const char *const names[] = { "http", "https", "tcp" }; /* bit order */
		for (unsigned b = 0; b < 3; b++) {
			size_t used = strlen(value);
			if ((o->endpoint_schemes & (1u << b)) != 0) {
				snprintf(value + used, len - used, "%s%s", used > 0 ? "," : "",
				    names[b]);
			}
		}
	} else if (s == DSI_SET_CHECK_HEADER) {
		/* Names only: header values are never shown (nor logged by a reload). */
		for (size_t i = 0; i < o->n_check_header; i++) {
			size_t used = strlen(value);
			snprintf(value + used, len - used, "%s%.*s: (set)", i ? "," : "",
			    (int) strcspn(o->check_header[i], ":"), o->check_header[i]);
		}
		if (o->n_check_header == 0) {
			snprintf(value, len, "none");
		}
	} else if (s == DSI_SET_CHECK_HEADER_FILE) {
		for (size_t i = 0; i < o->n_check_header_file; i++) {
			size_t used = strlen(value);
			snprintf(value + used, len - used, "%s%s", i ? "," : "",
			    o->check_header_file[i]);
		}
		if (o->n_check_header_file == 0) {
			snprintf(value, len, "none");
		}
	} else if (s == DSI_SET_ENV_PREFIX) {
		snprintf(value, len, "%s", c->prefix ? c->prefix : "");
	} else if (info->secret) {
		snprintf(value, len, "%s", o->text[s] != NULL ? "(set)" : "none");
	} else {
		snprintf(value, len, "%s", o->text[s] != NULL ? o->text[s] : info->dflt);
	}
}

void
dsi_config_print(const dsi_config *c, FILE *out)
{
	const dsi_server_options *o = &c->options;

	fprintf(out, "# discoveryd %s: the effective configuration\n", DISCOVERY_VERSION);
	fprintf(out, "%-26s %-30s %s\n", "environment", c->profile, c->profile_origin);
	fprintf(out, "%-26s %-30s %s\n", "config", c->file ? c->file : "none",
	    c->file ? c->file_origin : "default");
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const dsi_setting_info *info       = dsi_setting_get(s);
		char                    value[512] = "";
		dsi_config_value(c, s, value, sizeof(value));
		const char *name = info->flag != NULL ? info->flag : "api-key";
		fprintf(out, "%-26s %-30s %s\n", name, value,
		    (s == DSI_SET_ENV_PREFIX || s == DSI_SET_ENDPOINT_SCHEMES)
		            && o->source[s] == DSI_SRC_DEFAULT
		        ? "profile"
		        : o->origin[s]);
	}
	fprintf(out, "services:%s\n", c->n_boot == 0 ? " none" : "");
	for (size_t i = 0; i < c->n_boot; i++) {
		fprintf(out, "  %-24s %-30s %s\n", c->boot[i].service, c->boot[i].endpoint,
		    c->boot[i].origin);
	}
}
