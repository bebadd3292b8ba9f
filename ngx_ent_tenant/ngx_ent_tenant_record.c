/*
 * ngx_http_ent_tenant_module: the record kept in the cache.
 *
 * A fill brings back one row of ent.tenant_for_host(); it is compiled once
 * into a rows blob of the same cells, the allow-list's CIDRs replaced by
 * sorted, merged address ranges (binary-searched per request), and decoded
 * per request into ngx_http_ent_tenant_t pointing into the copy.
 */


#include "ngx_ent_tenant.h"


ngx_int_t
ngx_http_ent_tenant_compile(ngx_ent_rows_t *rows, ngx_pool_t *pool,
    ngx_str_t *out, ngx_log_t *log)
{
    u_char             *p, *set;
    size_t              len, size, n4, n6, k, start;
    uint32_t            col;
    ngx_str_t           cells[NGX_HTTP_ENT_NCOLS];
    const u_char       *data;
    ngx_ent_iprange_t  *v4, *v6, range;

    if (rows->nrows != 1 || rows->ncols != NGX_HTTP_ENT_NCOLS) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ent tenant: ent.tenant_for_host() returned %uD rows "
                      "of %uD columns, expected 1 of %d (schema and module "
                      "out of step?)", rows->nrows, rows->ncols,
                      NGX_HTTP_ENT_NCOLS);
        return NGX_ERROR;
    }

    col = 0;

    while (ngx_ent_rows_next(rows, &data, &len)) {
        cells[col].data = (u_char *) data;
        cells[col].len = data ? len : 0;
        col++;
    }

    /*
     * Cells end up in response headers (CSP sources, report-uri), in
     * variables an operator may put in headers ($ent_tenant_name), in
     * proxy_pass ($ent_tenant_upstream): a control byte there, whatever
     * the table's constraints were when the row was written, would split a
     * header.  Such a cell is dropped (as SQL NULL: the defaults apply).
     */

    for (col = 0; col < NGX_HTTP_ENT_NCOLS; col++) {
        if (col == NGX_HTTP_ENT_COL_ALLOW || cells[col].data == NULL) {
            continue;
        }

        for (k = 0; k < cells[col].len; k++) {
            if (cells[col].data[k] < 0x20 || cells[col].data[k] == 0x7f) {
                break;
            }
        }

        if (k < cells[col].len) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "ent tenant: column %uD of the record of tenant "
                          "\"%V\" holds a control character, ignored",
                          col, &cells[1]);
            cells[col].data = NULL;
            cells[col].len = 0;
        }
    }

    /* the allow-list: CIDRs to sorted, merged ranges per family */

    n4 = 0;
    n6 = 0;
    v4 = NULL;
    v6 = NULL;

    if (rows->ncols && cells[NGX_HTTP_ENT_COL_ALLOW].data) {
        len = cells[NGX_HTTP_ENT_COL_ALLOW].len;

        v4 = ngx_palloc(pool, (len / 2 + 1) * sizeof(ngx_ent_iprange_t));
        v6 = ngx_palloc(pool, (len / 2 + 1) * sizeof(ngx_ent_iprange_t));
        if (v4 == NULL || v6 == NULL) {
            return NGX_ERROR;
        }

        p = cells[NGX_HTTP_ENT_COL_ALLOW].data;
        start = 0;

        for (k = 0; k <= len; k++) {
            if (k < len && p[k] != ',') {
                continue;
            }

            if (k > start) {
                switch (ngx_ent_cidr_parse(p + start, k - start, &range)) {
                case 4:
                    v4[n4++] = range;
                    break;
                case 16:
                    v6[n6++] = range;
                    break;
                default:
                    ngx_log_error(NGX_LOG_ERR, log, 0,
                                  "ent tenant: invalid allow-list entry "
                                  "\"%*s\"", k - start, p + start);
                    return NGX_ERROR;
                }
            }

            start = k + 1;
        }

        n4 = ngx_ent_ipset_build(v4, n4, 4);
        n6 = ngx_ent_ipset_build(v6, n6, 16);
    }

    /* the set cell: u32 has-list, u32 n4, u32 n6, then the ranges */

    len = 3 * sizeof(uint32_t) + (n4 + n6) * sizeof(ngx_ent_iprange_t);

    set = ngx_palloc(pool, len);
    if (set == NULL) {
        return NGX_ERROR;
    }

    /* no list, or an empty one: everyone is allowed */

    p = set;
    *(uint32_t *) p = (n4 + n6) ? 1 : 0;
    p += sizeof(uint32_t);
    *(uint32_t *) p = (uint32_t) n4;
    p += sizeof(uint32_t);
    *(uint32_t *) p = (uint32_t) n6;
    p += sizeof(uint32_t);

    if (n4) {
        p = ngx_cpymem(p, v4, n4 * sizeof(ngx_ent_iprange_t));
    }

    if (n6) {
        p = ngx_cpymem(p, v6, n6 * sizeof(ngx_ent_iprange_t));
    }

    cells[NGX_HTTP_ENT_COL_ALLOW].data = set;
    cells[NGX_HTTP_ENT_COL_ALLOW].len = len;

    /* the record: a rows blob of one row, the set in place of the CIDRs */

    size = ngx_ent_rows_header_size();

    for (col = 0; col < NGX_HTTP_ENT_NCOLS; col++) {
        size += ngx_ent_rows_cell_size(cells[col].len);
    }

    out->data = ngx_palloc(pool, size);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_ent_rows_put_header(out->data, 1, NGX_HTTP_ENT_NCOLS);

    for (col = 0; col < NGX_HTTP_ENT_NCOLS; col++) {
        p = ngx_ent_rows_put_cell(p, cells[col].data, cells[col].len,
                                  cells[col].data == NULL);
    }

    out->len = p - out->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_ent_tenant_decode(ngx_str_t *value, ngx_http_ent_tenant_t *t)
{
    size_t           len, n4, n6;
    uint32_t         col, u;
    ngx_str_t        cells[NGX_HTTP_ENT_NCOLS], *s;
    const u_char    *data;
    ngx_ent_rows_t   rows;

    if (ngx_ent_rows_open(&rows, value->data, value->len) != 0
        || rows.nrows != 1 || rows.ncols != NGX_HTTP_ENT_NCOLS)
    {
        return NGX_ERROR;
    }

    col = 0;

    while (ngx_ent_rows_next(&rows, &data, &len)) {
        cells[col].data = (u_char *) (data ? data : (const u_char *) "");
        cells[col].len = data ? len : 0;
        col++;
    }

    t->id = cells[0];
    t->code = cells[1];
    t->name = cells[2];
    t->status_text = cells[3];
    t->tier = cells[4];
    t->region = cells[5];
    t->upstream = cells[6];
    t->features = cells[7];
    t->csp_sources = cells[9];
    t->csp_report_only = (cells[10].len == 1 && cells[10].data[0] == 't');
    t->csp_report_uri = cells[11];
    t->hsts_preload = (cells[12].len == 1 && cells[12].data[0] == 't');
    t->brand_color = cells[13];
    t->logo_url = cells[14];
    t->custom_domain = (cells[15].len == 1 && cells[15].data[0] == 't');
    t->parent_id = cells[16];
    t->ratelimits = cells[17];
    t->billing_anchor = cells[18];

    s = &t->status_text;

    if (s->len == 6 && ngx_strncmp(s->data, "active", 6) == 0) {
        t->status = NGX_HTTP_ENT_ACTIVE;

    } else if (s->len == 9 && ngx_strncmp(s->data, "suspended", 9) == 0) {
        t->status = NGX_HTTP_ENT_SUSPENDED;

    } else if (s->len == 11 && ngx_strncmp(s->data, "maintenance", 11) == 0) {
        t->status = NGX_HTTP_ENT_MAINTENANCE;

    } else {
        /* deactivated, or anything unexpected: refuse */
        t->status = NGX_HTTP_ENT_DEACTIVATED;
    }

    /* the set cell (see ngx_http_ent_tenant_compile) */

    len = cells[NGX_HTTP_ENT_COL_ALLOW].len;
    data = cells[NGX_HTTP_ENT_COL_ALLOW].data;

    if (len < 3 * sizeof(uint32_t)) {
        return NGX_ERROR;
    }

    ngx_memcpy(&u, data, sizeof(uint32_t));
    t->has_allowlist = u;
    ngx_memcpy(&u, data + sizeof(uint32_t), sizeof(uint32_t));
    n4 = u;
    ngx_memcpy(&u, data + 2 * sizeof(uint32_t), sizeof(uint32_t));
    n6 = u;

    if (n4 > len / sizeof(ngx_ent_iprange_t)
        || n6 > len / sizeof(ngx_ent_iprange_t)
        || len != 3 * sizeof(uint32_t)
                  + (n4 + n6) * sizeof(ngx_ent_iprange_t))
    {
        return NGX_ERROR;
    }

    /* ngx_ent_iprange_t holds bytes only: any alignment will do */

    t->v4 = (const ngx_ent_iprange_t *) (data + 3 * sizeof(uint32_t));
    t->nv4 = n4;
    t->v6 = t->v4 + n4;
    t->nv6 = n6;

    return NGX_OK;
}
