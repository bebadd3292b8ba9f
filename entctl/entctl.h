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


typedef struct pg_conn  PGconn;

int entctl_tenant(PGconn *conn, int argc, char **argv);
int entctl_domain(PGconn *conn, int argc, char **argv);
int entctl_feature(PGconn *conn, int argc, char **argv);
int entctl_allow(PGconn *conn, int argc, char **argv);
int entctl_headers(PGconn *conn, int argc, char **argv);
int entctl_maintenance(PGconn *conn, int argc, char **argv,
    const char *redis);
int entctl_ratelimit(PGconn *conn, int argc, char **argv);
int entctl_sso(PGconn *conn, int argc, char **argv);


#endif /* _ENTCTL_H_INCLUDED_ */
