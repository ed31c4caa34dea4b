/* CIDR rules for the addresses endpoints may point at. */
#include "server/netpolicy.h"

#include <arpa/inet.h>
#include <discovery/discovery.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/text.h"

int
dsi_cidr_parse(const char *text, dsi_cidr *out, char *why, size_t why_len)
{
	char        addr[64], esc[80];
	const char *slash = strchr(text, '/');
	size_t      alen  = slash != NULL ? (size_t) (slash - text) : strlen(text);

	memset(out, 0, sizeof(*out));
	dsi_text_escape(text, esc, sizeof(esc));
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(why, why_len, "\"%s\" is not an address or CIDR range", esc);
		return DSC_EINVAL;
	}
	memcpy(addr, text, alen);
	addr[alen] = 0;
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = 128;
	} else {
		snprintf(why, why_len, "\"%s\" is not an address or CIDR range", esc);
		return DSC_EINVAL;
	}
	if (slash != NULL) {
		char *end = NULL;
		long  n   = strtol(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end != 0 || n < 0 || n > out->prefix) {
			snprintf(why, why_len, "\"%s\" has a prefix length outside 0-%d", esc,
			    out->prefix);
			return DSC_EINVAL;
		}
		out->prefix = (int) n;
	}
	dsi_strlcpy(out->text, text, sizeof(out->text));
	return 0;
}

int
dsi_netpolicy_add(dsi_netpolicy *p, bool allow, const char *cidr, char *why, size_t why_len)
{
	dsi_cidr c;
	int      rv = dsi_cidr_parse(cidr, &c, why, why_len);
	if (rv != 0) {
		return rv;
	}
	if ((allow ? p->n_allow : p->n_deny) >= DSI_NETPOLICY_MAX) {
		snprintf(why, why_len, "at most %d rules of each kind", DSI_NETPOLICY_MAX);
		return DSC_ELIMIT;
	}
	if (allow) {
		p->allow[p->n_allow++] = c;
	} else {
		p->deny[p->n_deny++] = c;
	}
	return 0;
}

void
dsi_netpolicy_init(dsi_netpolicy *p)
{
	char why[128];
	memset(p, 0, sizeof(*p));
	dsi_netpolicy_add(p, false, DSI_NETPOLICY_DENY_V4, why, sizeof(why));
	dsi_netpolicy_add(p, false, DSI_NETPOLICY_DENY_V6, why, sizeof(why));
}

static bool
covers(const dsi_cidr *c, int family, const uint8_t *addr)
{
	if (c->family != family) {
		return false;
	}
	int full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr, addr, (size_t) full) != 0) {
		return false;
	}
	if (rest == 0) {
		return true;
	}
	uint8_t mask = (uint8_t) (0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}

bool
dsi_netpolicy_permits(
    const dsi_netpolicy *p, int family, const uint8_t *addr, char *why, size_t why_len)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char                 text[64];

	/* ::ffff:a.b.c.d is a.b.c.d: judge it as IPv4, or the v4 rules are bypassed. */
	if (family == AF_INET6 && memcmp(addr, mapped, sizeof(mapped)) == 0) {
		family = AF_INET;
		addr += 12;
	}
	inet_ntop(family, addr, text, sizeof(text));
	for (size_t i = 0; i < p->n_allow; i++) {
		if (covers(&p->allow[i], family, addr)) {
			return true;
		}
	}
	for (size_t i = 0; i < p->n_deny; i++) {
		if (covers(&p->deny[i], family, addr)) {
			snprintf(why, why_len, "address %s is in the denied range %s", text,
			    p->deny[i].text);
			return false;
		}
	}
	if (p->n_allow > 0) {
		snprintf(why, why_len, "address %s is outside every --allow-endpoint range", text);
		return false;
	}
	return true;
}

bool
dsi_netpolicy_permits_host(const dsi_netpolicy *p, const char *host, char *why, size_t why_len)
{
	uint8_t addr[16];
	char    buf[64];
	size_t  len = strlen(host);

	/* curl gives IPv6 hosts in brackets, with an optional zone. */
	if (len >= 2 && host[0] == '[' && len - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2]           = 0;
		buf[strcspn(buf, "%")] = 0;
		host                   = buf;
	}
	if (inet_pton(AF_INET, host, addr) == 1) {
		return dsi_netpolicy_permits(p, AF_INET, addr, why, why_len);
	}
	if (inet_pton(AF_INET6, host, addr) == 1) {
		return dsi_netpolicy_permits(p, AF_INET6, addr, why, why_len);
	}
	return true;
}
