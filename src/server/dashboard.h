/*
 * The dashboard page (GET / on the admin endpoint): src/server/dashboard.html,
 * embedded at build time by cmake/embed.cmake into the build tree.
 */
#ifndef DSI_DASHBOARD_H
#define DSI_DASHBOARD_H

#include <stddef.h>

/* The page's text, NUL-terminated; dsi_dashboard_html_len bytes before the NUL. */
extern const char   dsi_dashboard_html[];
extern const size_t dsi_dashboard_html_len;

/* The CSP source expressions ('sha256-...') of the page's inline script and style. */
extern const char dsi_dashboard_html_script_hash[];
extern const char dsi_dashboard_html_style_hash[];

#endif
