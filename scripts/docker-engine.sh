#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install Debian's docker.io when dockerd is
# missing, then start dockerd in the background when `docker info` fails (there is no
# systemd here). Prints nothing when the engine already answers.
#
# Exit status: 0 when the engine answers; 1 when it cannot be had (its reason on stderr).
# DOCKER_ENGINE_DIR (default /var/lib/jupyter-deploy/docker-engine) holds dockerd's log
# and dockerd.pid, the PID to stop it by.
set -euo pipefail

dir=${DOCKER_ENGINE_DIR:-/var/lib/jupyter-deploy/docker-engine}
deadline_s=${DOCKER_ENGINE_TIMEOUT:-60}

answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null && answers; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "docker-engine: no engine answers and starting one needs root" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null; then
    echo "docker-engine: installing docker.io from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        docker.io iptables >&2
fi
mkdir -p "$dir"
if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
    echo "docker-engine: dockerd (pid $(cat "$dir/dockerd.pid")) is starting" >&2
else
    # setsid: the engine outlives the shell (and the make) that started it.
    setsid dockerd --pidfile "$dir/docker.pid" >>"$dir/dockerd.log" 2>&1 < /dev/null &
    echo "$!" > "$dir/dockerd.pid"
    echo "docker-engine: started dockerd (pid $!, log $dir/dockerd.log)" >&2
fi
end=$((SECONDS + deadline_s))
until answers; do
    if ! kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
        echo "docker-engine: dockerd exited; the end of $dir/dockerd.log:" >&2
        tail -n 20 "$dir/dockerd.log" >&2
        exit 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
        echo "docker-engine: dockerd did not answer within ${deadline_s} s ($dir/dockerd.log)" >&2
        exit 1
    fi
    sleep 0.2
done
