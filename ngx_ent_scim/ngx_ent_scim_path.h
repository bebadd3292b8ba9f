/*
 * I/O-free SCIM 2.0 PATCH paths (RFC 7644, section 3.5.2):
 *
 *   PATH = attrPath / valuePath [subAttr]
 *
 *   userName                            attr "username"
 *   name.givenName                      attr "name", sub "givenname"
 *   emails[type eq "work"]              attr "emails", filter
 *   emails[type eq "work"].value        attr "emails", filter, sub "value"
 *   members[value eq "2819c223-..."]    attr "members", filter
 *   urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department
 *                                       uri "urn:...:enterprise:2.0:user",
 *                                       attr "department"
 *   urn:...:2.0:User:manager.value      uri, attr "manager", sub "value"
 *
 * The names, the bracket filter and the limits are those of filters
 * (ngx_ent_scim_filter.h): names in lower case, the URI split off at the
 * last ":", the filter's names bare sub-attribute names; no whitespace
 * outside the brackets; a filter after "name.sub" is an error.  A bare
 * schema URN ("urn:...:enterprise:2.0:User") parses as uri
 * "urn:...:enterprise:2.0" and attr "user": the caller, which knows its
 * schemas, checks uri ":" attr against them.  Which attributes exist is
 * the caller's business too: nothing here knows a schema.
 *
 * Results are ENT_SCIM_* of ngx_ent_scim_filter.h, to be answered with
 * 400 and scimType invalidPath (but ENT_SCIM_INTERNAL); err holds a fixed
 * text.
 */

#ifndef _NGX_ENT_SCIM_PATH_H_INCLUDED_
#define _NGX_ENT_SCIM_PATH_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_ent_scim_filter.h"


typedef struct {
    char                *uri;        /* lower case, no last ":"; or NULL */
    char                *attr;       /* lower case */
    char                *sub;        /* lower case; or NULL */
    ent_scim_node_t     *filter;     /* the "[...]" filter; or NULL */
    unsigned             case_exact:1;   /* set by the caller: string
                                            comparisons of the filter are
                                            then exact */
} ent_scim_path_t;


/*
 * Parses path; *out is zeroed first, and filled on ENT_SCIM_OK (free it
 * with ent_scim_path_free()).
 */
int ent_scim_path_parse(const char *path, size_t len, ent_scim_path_t *out,
    char *err, size_t errlen);

/*
 * Evaluates the bracket filter against one element of the multi-valued
 * attribute: 1 when it matches (always, without a filter), 0 when not.
 * A name is looked up among the element's members case-insensitively;
 * for an element that is not an object (a multi-valued simple attribute
 * such as "schemas"), the name "value" is the element itself.
 *
 *   - a member that is absent or null fails every comparison, and "pr"
 *     (present: not null, and not "", [] or {});
 *   - strings compare with strings: ASCII case folded unless
 *     p->case_exact; when both are RFC 3339 date-times, eq ne gt ge lt le
 *     compare the instants; otherwise gt ge lt le compare bytes;
 *   - numbers compare with numbers (integers exactly, else as doubles);
 *     true and false with booleans;
 *   - a comparison of different types is false, so "ne" too;
 *   - not (x) is true when x is false.
 */
int ent_scim_path_match(const ent_scim_path_t *p, json_t *elem);

/* the same for any filter tree whose names are bare (a "[...]" filter) */
int ent_scim_node_match(const ent_scim_node_t *n, json_t *elem,
    int case_exact);

void ent_scim_path_free(ent_scim_path_t *p);


#endif /* _NGX_ENT_SCIM_PATH_H_INCLUDED_ */
