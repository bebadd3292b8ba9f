/*
 * entctl: the ngx_ent admin command line.
 */

#ifndef _ENTCTL_H_INCLUDED_
#define _ENTCTL_H_INCLUDED_


#include <stddef.h>


typedef struct {
    int          version;
    const char  *name;
    const char  *sql;
} ent_migration_t;


extern const ent_migration_t  ent_migrations[];


typedef struct pg_conn    PGconn;
typedef struct pg_result  PGresult;


/* an option a command knows (entctl_args()) */

#define ENTCTL_OPT_VALUE   0           /* "--name VALUE", at most once */
#define ENTCTL_OPT_FLAG    1           /* "--name", no value */
#define ENTCTL_OPT_MULTI   2           /* "--name VALUE", repeatable */

typedef struct {
    const char  *name;
    int          kind;
} entctl_opt_t;


/* entctl/entctl.c */
int entctl_args(int argc, char **argv, int min, int max,
    const entctl_opt_t *known, const char *usage);

int entctl_tenant(PGconn *conn, int argc, char **argv);
int entctl_domain(PGconn *conn, int argc, char **argv);
int entctl_feature(PGconn *conn, int argc, char **argv);
int entctl_allow(PGconn *conn, int argc, char **argv);
int entctl_headers(PGconn *conn, int argc, char **argv);
int entctl_maintenance(PGconn *conn, int argc, char **argv,
    const char *redis);
int entctl_ratelimit(PGconn *conn, int argc, char **argv);
int entctl_sso(PGconn *conn, int argc, char **argv);
int entctl_sso_saml(PGconn *conn, int argc, char **argv);
int entctl_scim_token(PGconn *conn, int argc, char **argv);
int entctl_user(PGconn *conn, int argc, char **argv);

/* entctl/authz.c */
int entctl_role(PGconn *conn, int argc, char **argv);
int entctl_permission(PGconn *conn, int argc, char **argv);
int entctl_member(PGconn *conn, int argc, char **argv);

/* entctl/authz.c, shared with entctl/breakglass.c */
int entctl_authz_args(int argc, char **argv, int min, int max,
    const char *const *known, const char *usage);
const char *entctl_authz_opt(int argc, char **argv, int npos,
    const char *name);
int entctl_authz_number(const char *s, int min, int max);
PGresult *entctl_authz_query(PGconn *conn, const char *sql, int n,
    const char *const *params);
int entctl_authz_end(PGconn *conn, int ok);
void entctl_authz_table(PGresult *res);
int entctl_authz_role_exists(PGconn *conn, const char *tid, const char *code,
    const char *role);

/* entctl/breakglass.c */
int entctl_platform_admin(PGconn *conn, int argc, char **argv);
int entctl_audit(PGconn *conn, int argc, char **argv);
int entctl_sla(PGconn *conn, int argc, char **argv);
const char *entctl_actor(void);
int entctl_breakglass(PGconn *conn, int argc, char **argv);

/* entctl/sso.c, for the SAML and authorization commands */
const char *sso_opt(int argc, char **argv, const char *name);
int sso_exec(PGconn *conn, const char *sql, int n,
    const char *const *params, int print);
char *sso_tenant_id(PGconn *conn, const char *code);
int sso_read_file(const char *path, unsigned char *buf, size_t size,
    size_t *len);
int sso_secret_key(const char *path, unsigned char *key);
char *sso_fetch(const char *url, const char *ca, int *status);
int entctl_attr_map(int argc, char **argv, const char *opt, char **out);
int sso_domains(const char *v, char *out, size_t size);


#endif /* _ENTCTL_H_INCLUDED_ */
