#!/usr/bin/env bash
# Fails the build when a configuration field has no creation or merge rule:
# every "conf->X = NGX_CONF_UNSET*" in a create_*_conf must be matched by a
# ngx_conf_merge_*/ngx_conf_init_* of X in the same file, and the reverse.
set -u
cd "$(dirname "$0")/.." || exit 1
rc=0
for f in ngx_ent_*/*.c; do
    set_fields=$(grep -oE '(conf|cmcf|lcf|scf|mcf)->[a-z_]+ = NGX_CONF_UNSET' "$f" \
                 | sed -E 's/.*->([a-z_]+) .*/\1/' | sort -u)
    merged=$(grep -oE 'ngx_conf_(merge|init)_[a-z_]+\((conf|cmcf|lcf|scf|mcf)->[a-z_]+' "$f" \
             | sed -E 's/.*->([a-z_]+)$/\1/' | sort -u)
    for x in $set_fields; do
        if ! grep -qx "$x" <<< "$merged"; then
            echo "$f: field '$x' is set to NGX_CONF_UNSET but never merged" >&2
            rc=1
        fi
    done
    for x in $merged; do
        if ! grep -qx "$x" <<< "$set_fields"; then
            echo "$f: field '$x' is merged but never set to NGX_CONF_UNSET" >&2
            rc=1
        fi
    done
done
exit $rc
