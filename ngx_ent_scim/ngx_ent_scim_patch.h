/*
 * I/O-free SCIM 2.0 PATCH (RFC 7644, section 3.5.2): a PatchOp body
 * applied to a resource held as JSON (jansson), checked against a table
 * of the resource's attributes.  No nginx headers: the unit tests and the
 * libFuzzer target link this file directly.
 *
 * The body:
 *
 *   {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
 *    "Operations": [{"op": "add", "path": "...", "value": ...}, ...]}
 *
 *   - at most ENT_SCIM_PATCH_MAX_BODY bytes of strict UTF-8 JSON, no
 *     duplicate members, no \u0000; "schemas" must hold the PatchOp URN;
 *     1 to ENT_SCIM_PATCH_MAX_OPS operations (more: tooMany);
 *   - member names of the body and of an operation ("Operations", "op",
 *     "path", "value") are case-insensitive, other members are ignored;
 *   - "op" is "add", "replace" or "remove" in any case ("Replace", "ADD");
 *   - a "path" of null is no path.
 *
 * Targets.  A path is parsed by ent_scim_path_parse(): attr, attr.sub,
 * attr[filter], attr[filter].sub, each optionally URN-qualified.  The
 * core URN (schema->core_urn) prefix is dropped; an extension's URN
 * prefix ("urn:...:enterprise:2.0:User:department") names an attribute
 * of the extension object; the bare extension URN names the extension
 * object itself.  Names are case-insensitive and written back as the
 * table spells them.  Without a path, "add" and "replace" take an object
 * whose every member name is read as a path (so "name.givenName" and
 * URN-qualified names work too) and applied with that member's value.
 *
 * Operations, for a target T and a value V:
 *
 *   add/replace  simple T: set.  Complex single-valued T ("name", the
 *                extension, "manager"): V's sub-attributes are merged
 *                in, the others are kept (RFC 7644 3.5.2.1 and 3.5.2.3;
 *                what Okta's partial "name" objects need), a null one
 *                is removed.  Multi-valued T without a filter: "add"
 *                appends V's elements (skipping exact duplicates),
 *                "replace" replaces the whole array.  T.sub of a
 *                multi-valued T without a filter: the sub-attribute of
 *                every element (noTarget when there is none).
 *   filtered     T[f].sub: the sub-attribute of every matching element;
 *                T[f]: "add" merges V into each matching element,
 *                "replace" replaces each matching element by V.  When no
 *                element matches, T[f].sub (add or replace) and T[f]
 *                (add) create one from the filter's "sub eq value"
 *                comparisons joined by "and" plus V (phoneNumbers[type eq
 *                "mobile"].value with "555" adds {"type": "mobile",
 *                "value": "555"}); a filter with anything else, and
 *                "replace" of T[f], are noTarget.
 *   remove       T: the attribute; T.sub: the sub-attribute (of every
 *                element of a multi-valued T); T[f]: the matching
 *                elements; T[f].sub: that sub-attribute of the matching
 *                elements.  A filter that matches nothing is noTarget
 *                (RFC 7644 3.12: "the specified path ... contains a filter
 *                that yields no match"); an attribute that is already
 *                unassigned is not an error.  A "value" with a path to
 *                a multi-valued T and no filter removes the elements
 *                that hold all of V's elements' members (Entra's way of
 *                removing one value).  No path: noTarget.
 *
 * Values.
 *
 *   - a null V with add or replace, and an empty array with replace of
 *     a multi-valued T, unassign the target (RFC 7643 2.5), like remove
 *     but never noTarget; add of an empty array changes nothing;
 *   - booleans also as the strings "true" and "false" in any case
 *     (Entra's "False" for "active", "True" for "primary");
 *   - a single-valued T accepts a one-element array [x] as x, and a
 *     simple single-valued T also {"value": x} (so [{"value": x}] too, as
 *     Entra sends); a complex T with a "value" sub-attribute accepts a
 *     string s as {"value": s} (Entra's manager);
 *   - a multi-valued T accepts one element not wrapped in an array, and
 *     a complex one with a "value" sub-attribute a string s as {"value":
 *     s};
 *   - every other mismatch of type, an unknown sub-attribute inside a
 *     value, two spellings of one name in an object, a string longer than
 *     ENT_SCIM_PATCH_MAX_STRING bytes, more than ENT_SCIM_PATCH_MAX_VALUES
 *     elements: invalidValue.
 *
 * Rules.
 *
 *   - read-only attributes (id, meta, groups): add or replace with a
 *     value equal to the current one is ignored (Okta sends the "id"
 *     back), anything else is mutability;
 *   - "schemas" is kept by this code: it is ignored in a value without
 *     a path, a path to it is mutability; after the patch it lists
 *     exactly the extensions present;
 *   - an unknown attribute or sub-attribute in a path, a filter on a
 *     single-valued attribute, ".sub" of a simple one: invalidPath;
 *   - "primary": after each operation at most one element of a
 *     multi-valued attribute has primary true: the one the operation set
 *     wins and the others become false; an operation that sets two is
 *     invalidValue;
 *   - an element that loses a required sub-attribute ("value" of emails)
 *     or its last one is dropped; an empty complex attribute or array is
 *     removed, and an empty extension with its URN in "schemas";
 *   - after all operations, required attributes (userName) must be
 *     non-empty strings and every element must hold its required
 *     sub-attributes: invalidValue.
 *
 * Limits: filter evaluation is budgeted (ENT_SCIM_PATCH_MAX_COST, about
 * byte comparisons): past it, tooMany.
 *
 * Files: ngx_ent_scim_patch.c holds the operations
 * (ent_scim_patch_apply()); ngx_ent_scim_patch_value.c the values, the
 * User schema (ent_scim_patch_user_schema) and the checks after all
 * operations.
 */

#ifndef _NGX_ENT_SCIM_PATCH_H_INCLUDED_
#define _NGX_ENT_SCIM_PATCH_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_ent_scim_filter.h"


#define ENT_SCIM_PATCH_MAX_BODY     (1024 * 1024)
#define ENT_SCIM_PATCH_MAX_OPS      100
#define ENT_SCIM_PATCH_MAX_VALUES   100     /* elements of one attribute */
#define ENT_SCIM_PATCH_MAX_STRING   4096    /* bytes of one string value */
#define ENT_SCIM_PATCH_MAX_COST     (64 * 1024 * 1024)

#define ENT_SCIM_PATCH_URN  "urn:ietf:params:scim:api:messages:2.0:PatchOp"

/* attribute types */
#define ENT_SCIM_PATCH_STRING       1
#define ENT_SCIM_PATCH_BOOLEAN      2
#define ENT_SCIM_PATCH_DATETIME     3     /* a string, RFC 3339 */
#define ENT_SCIM_PATCH_INTEGER      4
#define ENT_SCIM_PATCH_DECIMAL      5
#define ENT_SCIM_PATCH_REFERENCE    6     /* a string */
#define ENT_SCIM_PATCH_COMPLEX      7


typedef struct ent_scim_patch_attr_s  ent_scim_patch_attr_t;

struct ent_scim_patch_attr_s {
    const char                   *name;     /* as the resource spells it */
    int                           type;     /* ENT_SCIM_PATCH_* */
    unsigned                      multi:1;
    unsigned                      readonly:1;
    unsigned                      required:1;
    unsigned                      extension:1;  /* top level, COMPLEX:
                                                   name is the schema
                                                   URN */
    const ent_scim_patch_attr_t  *subs;     /* COMPLEX */
    size_t                        nsubs;
};


typedef struct {
    const char                   *core_urn; /* "urn:...:core:2.0:User" */
    const ent_scim_patch_attr_t  *attrs;
    size_t                        nattrs;
} ent_scim_patch_schema_t;


/*
 * The SCIM User as ngx_ent stores it (ent.scim_user_json()): id, meta,
 * groups read-only; userName required; externalId, name (givenName,
 * familyName, formatted), displayName, active, emails and phoneNumbers
 * (value required, type, primary, display), and the enterprise extension
 * (employeeNumber, costCenter, organization, division, department,
 * manager: value, $ref, displayName).
 */
extern const ent_scim_patch_schema_t  ent_scim_patch_user_schema;


/*
 * Applies the PatchOp body to *resource (an object, as GET returns it),
 * all operations or none.
 *
 * ENT_SCIM_OK: *resource is the patched object, a new reference (the
 * caller decrefs both the old and the new one).  Otherwise *resource is
 * untouched, err holds a fixed text (nothing of the input) and:
 *
 *   ENT_SCIM_INTERNAL    allocation failure or a bad resource or schema:
 *                        answer 500, *scim_type is NULL;
 *   ENT_SCIM_LENGTH      the body is longer than ENT_SCIM_PATCH_MAX_BODY
 *                        (413, or 400 invalidSyntax);
 *   anything else        400 with *scim_type: "invalidSyntax",
 *                        "invalidPath", "invalidValue", "noTarget",
 *                        "mutability" or "tooMany".
 */
int ent_scim_patch_apply(json_t **resource, const char *body, size_t len,
    const ent_scim_patch_schema_t *schema, const char **scim_type,
    char *err, size_t errlen);

/*
 * Spells the members of a resource (a POST or PUT body) as the schema
 * does, at every level ("Emails" becomes "emails", "GivenName" inside
 * "name" "givenName"; "schemas" too): attribute names are
 * case-insensitive (RFC 7643 2.1), and PostgreSQL reads the body by the
 * schema's spelling.  Unknown members are left as they are.
 *
 * 0, or -1 when one attribute is there twice, in two spellings (nothing
 * is renamed then).
 */
int ent_scim_patch_canon(json_t *obj, const ent_scim_patch_schema_t *schema);

/*
 * The member of that name, case-insensitively (NULL when none): 0, or -1
 * when it is there twice, in two spellings.  For the module's reading of
 * PATCH and .search bodies too.
 */
int ent_scim_patch_member(json_t *obj, const char *name, json_t **value);


#endif /* _NGX_ENT_SCIM_PATCH_H_INCLUDED_ */
