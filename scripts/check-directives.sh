#!/usr/bin/env bash
# Fails the build when a configuration field has no creation or merge rule
# (mod_auth_openidc's check_directives.sh idea): in each module source,
#   - a field set to NGX_CONF_UNSET* in a create_*_conf must be merged or
#     initialized (ngx_conf_merge_* / ngx_conf_init_*);
#   - a merged field must be set to NGX_CONF_UNSET* or listed in the
#     "set by ngx_pcalloc()" comment.
set -u
cd "$(dirname "$0")/.." || exit 1
rc=0
for f in ngx_ent_*/*.c; do
    # only what create_*_conf functions set
    unset_fields=$(awk '/^[a-z_]+\(/ { fn = $0 }
                        fn ~ /create_[a-z_]*conf/ && /->[a-z_]+ = NGX_CONF_UNSET/' "$f" \
                   | grep -oE '[a-z]+->[a-z_]+ = NGX_CONF_UNSET' \
                   | sed -E 's/.*->([a-z_]+) .*/\1/' | sort -u)
    pcalloc_fields=$(grep -oE '^ *\* +[a-z]+->[a-z_]+ = ' "$f" \
                     | sed -E 's/.*->([a-z_]+) = $/\1/' | sort -u)
    merged=$(grep -oE 'ngx_conf_(merge|init)_[a-z_]+\([a-z]+->[a-z_]+' "$f" \
             | sed -E 's/.*->([a-z_]+)$/\1/' | sort -u)
    for x in $unset_fields; do
        if ! grep -qx "$x" <<< "$merged"; then
            echo "$f: field '$x' is set to NGX_CONF_UNSET but never merged" >&2
            rc=1
        fi
    done
    for x in $merged; do
        if ! grep -qx "$x" <<< "$unset_fields" \
           && ! grep -qx "$x" <<< "$pcalloc_fields"; then
            echo "$f: field '$x' is merged but neither set to NGX_CONF_UNSET" \
                 "nor listed as set by ngx_pcalloc()" >&2
            rc=1
        fi
    done
done
exit $rc
