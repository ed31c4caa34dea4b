/*
 * Requests built in one allocation: the header structs, then the metadata
 * entries, then the pointer array protobuf-c wants. One free undoes it.
 */
#include "common/request.h"

#include <stdint.h>
#include <stdlib.h>

typedef Discovery__V1__RegisterRequest__MetadataEntry md_entry;

/* The head of a Register block; n entries and n pointers follow it. */
typedef struct register_block {
	Discovery__V1__Request         req; /* first: the block's address is the Request's */
	Discovery__V1__RegisterRequest rr;
} register_block;

static char *
or_empty(const char *s)
{
	return (char *) (s != NULL ? s : "");
}

int
dsi_request_register_new(Discovery__V1__Request **out, const dsc_registration *reg)
{
	register_block *b;
	md_entry       *ents;
	md_entry      **ptrs;
	size_t          n;

	if (out == NULL || reg == NULL || (reg->metadata == NULL && reg->n_metadata > 0)) {
		return DSC_EINVAL;
	}
	n = reg->n_metadata;
	/* sizeof(register_block) keeps the entries aligned; entries keep the pointers aligned. */
	if (n > (SIZE_MAX - sizeof(*b)) / (sizeof(*ents) + sizeof(*ptrs))) {
		return DSC_ENOMEM;
	}
	if ((b = malloc(sizeof(*b) + n * (sizeof(*ents) + sizeof(*ptrs)))) == NULL) {
		return DSC_ENOMEM;
	}
	ents = (md_entry *) (void *) (b + 1);
	ptrs = (md_entry **) (void *) (ents + n);
	for (size_t i = 0; i < n; i++) {
		discovery__v1__register_request__metadata_entry__init(&ents[i]);
		ents[i].key   = or_empty(reg->metadata[i].key);
		ents[i].value = or_empty(reg->metadata[i].value);
		ptrs[i]       = &ents[i];
	}
	discovery__v1__request__init(&b->req);
	discovery__v1__register_request__init(&b->rr);
	b->rr.service     = or_empty(reg->service);
	b->rr.endpoint    = or_empty(reg->endpoint);
	b->rr.metadata    = n > 0 ? ptrs : NULL;
	b->rr.n_metadata  = n;
	b->rr.health_path = or_empty(reg->health_path);
	b->rr.ttl_ms      = reg->ttl_ms;
	b->rr.weight      = reg->weight;
	b->req.auth_token = or_empty(NULL);
	b->req.call_case  = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	b->req.register_  = &b->rr;
	*out              = &b->req;
	return 0;
}

void
dsi_request_free(Discovery__V1__Request *req)
{
	/* req is the first member of its block (C11 6.7.2.1: no padding before it). */
	free(req);
}
