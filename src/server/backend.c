/* The backend interface: each call goes to the backend's own function (backend.h). */
#include "server/backend.h"

#include "common/error.h"

int
dsi_backend_load(dsi_backend *b, dsi_registry *r, dsi_backend_check_fn check, void *check_arg,
    char *why, size_t why_len)
{
	return b->ops->load(b, r, check, check_arg, why, why_len);
}

int
dsi_backend_begin(dsi_backend *b)
{
	return b->ops->begin(b);
}

int
dsi_backend_write(dsi_backend *b, const dsi_registry_op_info *op)
{
	return b->ops->write(b, op);
}

int
dsi_backend_set_revision(dsi_backend *b, uint64_t rev)
{
	return b->ops->set_revision(b, rev);
}

int
dsi_backend_commit(dsi_backend *b, uint64_t rev)
{
	return b->ops->commit(b, rev);
}

void
dsi_backend_rollback(dsi_backend *b)
{
	b->ops->rollback(b);
}

const char *
dsi_backend_error(const dsi_backend *b)
{
	return b->ops->error(b);
}

const char *
dsi_backend_describe(const dsi_backend *b)
{
	return b->ops->describe(b);
}

uint64_t
dsi_backend_revision(const dsi_backend *b)
{
	return b->ops->revision(b);
}

int
dsi_backend_capability(dsi_backend *b, dsi_backend_cap cap, void **out)
{
	return b->ops->capability != NULL ? b->ops->capability(b, cap, out) : DSC_ENOTSUP;
}

void
dsi_backend_hold(dsi_backend *b)
{
	if (b->ops->hold != NULL) {
		b->ops->hold(b);
	}
}

void
dsi_backend_unhold(dsi_backend *b)
{
	if (b->ops->unhold != NULL) {
		b->ops->unhold(b);
	}
}

size_t
dsi_backend_max_batch(const dsi_backend *b)
{
	size_t n = b->ops->max_batch != NULL ? b->ops->max_batch(b) : DSI_STORE_BATCH;
	return n > 0 && n < DSI_STORE_BATCH ? n : DSI_STORE_BATCH;
}

void
dsi_backend_close(dsi_backend *b)
{
	if (b != NULL) {
		b->ops->close(b);
	}
}
