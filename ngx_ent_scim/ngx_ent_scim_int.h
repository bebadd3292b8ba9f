/*
 * ngx_ent SCIM: what the files of the I/O-free SCIM code share, for them
 * only; the rest of the module uses ngx_ent_scim_filter.h,
 * ngx_ent_scim_path.h and ngx_ent_scim_patch.h.
 *
 *   ngx_ent_scim_parse.c        the filter and PATCH path parser, the
 *                               tree's free, date-times
 *   ngx_ent_scim_filter.c       the filter compiler into SQL
 *   ngx_ent_scim_path.c         PATCH paths and their filters on JSON
 *   ngx_ent_scim_patch.c        PATCH operations
 *   ngx_ent_scim_patch_value.c  PATCH values, the User schema, the checks
 *                               after all operations, member helpers
 */

#ifndef _NGX_ENT_SCIM_INT_H_INCLUDED_
#define _NGX_ENT_SCIM_INT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_ent_scim_filter.h"
#include "ngx_ent_scim_patch.h"


#define ENT_SCIM_NOPS             10    /* rows of ent_scim_ops */

/* how a value is normalized */
#define ENT_SCIM_PATCH_UNWRAP     0x1   /* single-valued: [x] is x */
#define ENT_SCIM_PATCH_NULLS      0x2   /* keep null members (a merge) */


typedef struct {
    const char               *name;
    int                       op;
    const char               *sql;       /* between X and P */
} ent_scim_op_t;


typedef struct {
    const ent_scim_patch_schema_t  *schema;
    json_t                         *res;        /* the working copy */
    const char                     *scim_type;
    const char                     *text;
    size_t                          cost;       /* of filter evaluation */
} ent_scim_patch_ctx_t;


/* ngx_ent_scim_parse.c */

void ent_scim_error(char *err, size_t errlen, const char *msg);
int ent_scim_int64(const char *s);


/* ngx_ent_scim_filter.c */

extern const ent_scim_op_t  ent_scim_ops[ENT_SCIM_NOPS];


/* ngx_ent_scim_patch.c */

int ent_scim_patch_fail(ent_scim_patch_ctx_t *ctx, const char *scim_type,
    const char *text);


/* ngx_ent_scim_patch_value.c */

int ent_scim_patch_norm(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, json_t **out);
int ent_scim_patch_norm_multi(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, json_t **out);
int ent_scim_patch_norm_value(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, int flags, json_t **out);
int ent_scim_patch_finish(ent_scim_patch_ctx_t *ctx);
void ent_scim_patch_tidy(json_t *obj, const ent_scim_patch_attr_t *a);
const ent_scim_patch_attr_t *ent_scim_patch_find(
    const ent_scim_patch_attr_t *defs, size_t n, const char *name);
json_t *ent_scim_patch_get(json_t *obj, const char *name);
int ent_scim_patch_set(json_t *obj, const char *name, json_t *value);
void ent_scim_patch_del(json_t *obj, const char *name);


#endif /* _NGX_ENT_SCIM_INT_H_INCLUDED_ */
