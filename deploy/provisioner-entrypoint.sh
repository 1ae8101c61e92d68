#!/bin/sh
# Entry point of the provisioner's container (installed as
# /usr/local/bin/coffer-provisioner by the Dockerfile's `provisioner` target).
#
# With the local compute driver the instances' agents and PostgreSQL engines run
# in this container, in sessions of their own. When the container stops, whatever
# is still running in it is killed with SIGKILL, so on SIGTERM (docker compose
# stop/down) this script stops the provisioner, then every agent, which stops its
# engine cleanly, as `coffer run` does on Ctrl-C. The data stays in the
# COFFER_HOME volume; the next start relaunches the instances that were running.
set -u

python -m services.provisioner &
child=$!

stop_instances() {
    if [ "${COFFER_COMPUTE_DRIVER:-local}" = local ]; then
        python -c 'from services.provisioner.drivers.local import LocalDriver; LocalDriver().stop_all()'
    fi
}

on_signal() {
    kill -TERM "$child" 2>/dev/null
    wait "$child"
    code=$?
    stop_instances
    exit "$code"
}
trap on_signal TERM INT

wait "$child"
code=$?
# the provisioner ended by itself (a crash: `restart: on-failure` starts the
# container again, and the provisioner relaunches the instances)
stop_instances
exit "$code"
