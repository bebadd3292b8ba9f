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


#endif /* _ENTCTL_H_INCLUDED_ */
