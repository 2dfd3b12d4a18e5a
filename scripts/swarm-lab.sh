#!/usr/bin/env bash
# A real two-host Docker Swarm on this one machine, for the swarm runtime's tests (issue 14).
#
#   scripts/swarm-lab.sh up     two dockerd, each in its own network namespace, a swarm of
#                               them, a registry, the base image pushed; prints where
#   scripts/swarm-lab.sh down   stops all of it by PID and deletes the namespaces
#   scripts/swarm-lab.sh env    the lab's settings (as `up` wrote them), for `eval`
#
# Addresses exist only inside what this script creates: 10.77.0.1 (manager, namespace
# jdsw1), 10.77.0.2 (worker, jdsw2) and 10.77.0.254, a leg in the root namespace so that a
# deploy service here reaches instances. Each pair of them is joined by its own veth pair
# with /32 routes: no bridge, no forwarding, nothing of the default engine's iptables.
# The registry (Debian's docker-registry) answers the swarm at 10.77.0.1:5000 and this host
# at 127.0.0.1:5000 (two processes over one storage folder): the default engine pushes there
# as to any loopback registry, without an insecure-registry setting of its own. A second one,
# at 10.77.0.1:5001 and 127.0.0.1:5001, wants a user and password (lab.env has them).
# It never touches the Docker engine the other tests use, except to read its base image.
# Needs root, `ip netns`, dockerd and docker-registry (installed from Debian when missing).
set -euo pipefail

dir=${SWARM_LAB_DIR:-/var/lib/jupyter-deploy/swarm-lab}
base=${JUPYTER_DEPLOY_BASE_IMAGE:-jupyter-deploy-base:bookworm}
here=$(cd "$(dirname "$0")" && pwd)
N1=jdsw1 N2=jdsw2
A1=10.77.0.1 A2=10.77.0.2 AR=10.77.0.254
REGISTRY_PORT=${SWARM_LAB_REGISTRY_PORT:-5000}
PRIVATE_PORT=${SWARM_LAB_PRIVATE_PORT:-5001}

say() { echo "swarm-lab: $*" >&2; }

engine() {  # engine N: the docker CLI on host N's engine
    DOCKER_HOST="unix://$dir/$1/docker.sock" docker "${@:2}"
}

link() {  # link NS_A IF_A ADDR_A NS_B IF_B ADDR_B ("" is the root namespace)
    ip link add "$2" type veth peer name "$5"
    for side in "$1 $2 $3 $6" "$4 $5 $6 $3"; do
        set -- $side
        local run=()
        if [ "$1" != root ]; then ip link set "$2" netns "$1"; run=(ip netns exec "$1"); fi
        "${run[@]}" ip addr add "$3/32" dev "$2"
        "${run[@]}" ip link set "$2" up
        "${run[@]}" ip route add "$4/32" dev "$2"
    done
}

start_engine() {  # start_engine NAME NETNS
    local home="$dir/$1"
    mkdir -p "$home/data" "$home/exec"
    # `ip netns exec` gives a fresh /sys: the cgroup mounts are redone before dockerd starts
    # (else "Devices cgroup isn't mounted"). setsid: it outlives the shell that started it.
    setsid ip netns exec "$2" sh -c '
        mount -t tmpfs cgroup_root /sys/fs/cgroup
        for s in cpu cpuacct cpuset memory devices freezer blkio pids; do
            mkdir -p /sys/fs/cgroup/$s && mount -t cgroup -o $s cgroup /sys/fs/cgroup/$s
        done
        mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
        mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
        mount -t cgroup2 none /sys/fs/cgroup/unified
        exec dockerd --data-root "$1/data" --exec-root "$1/exec" -H "unix://$1/docker.sock" \
            --pidfile "$1/docker.pid" --insecure-registry 10.77.0.0/24 --shutdown-timeout 2
    ' sh "$home" >"$home/dockerd.log" 2>&1 </dev/null &
    echo "$!" >"$home/dockerd.pid"
}

wait_engine() {  # wait_engine NAME
    local end=$((SECONDS + 60))
    until engine "$1" info >/dev/null 2>&1; do
        if ! kill -0 "$(cat "$dir/$1/dockerd.pid")" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
            say "dockerd $1 did not start; the end of $dir/$1/dockerd.log:"
            tail -n 15 "$dir/$1/dockerd.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

start_registry() {  # start_registry NAME ADDRESS NETNS|"" [STORAGE HTPASSWD]
    local config="$dir/registry-$1.yml"
    cat >"$config" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/${4:-registry}}
  delete: {enabled: true}
http: {addr: "$2", draintimeout: 1s}
EOF
    if [ -n "${5:-}" ]; then
        printf 'auth:\n  htpasswd: {realm: swarm-lab, path: %s}\n' "$5" >>"$config"
    fi
    local run=()
    [ -n "$3" ] && run=(ip netns exec "$3")
    setsid "${run[@]}" docker-registry serve "$config" >"$dir/registry-$1.log" 2>&1 </dev/null &
    echo "$!" >"$dir/registry-$1.pid"
}

base_image() {  # the base image into the manager: from the cache, the default engine, or built
    local cache="$dir/../swarm-lab-base.tar"
    if [ ! -s "$cache" ] && docker image inspect "$base" >/dev/null 2>&1; then
        docker save "$base" -o "$cache.part" && mv "$cache.part" "$cache"
    fi
    if [ -s "$cache" ]; then
        engine n1 load -q -i "$cache" >/dev/null
    else
        say "no $base to copy: building it in the lab (a minute or so)"
        DOCKER_HOST="unix://$dir/n1/docker.sock" "$here/base-image.sh" "$base"
        engine n1 save "$base" -o "$cache.part" && mv "$cache.part" "$cache"
    fi
    engine n1 tag "$base" "$A1:$REGISTRY_PORT/$base"
    engine n1 push -q "$A1:$REGISTRY_PORT/$base" >/dev/null
}

up() {
    if [ -f "$dir/lab.env" ]; then
        say "already up ($dir/lab.env); 'down' first"
        exit 0
    fi
    [ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
    command -v docker-registry >/dev/null || \
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            docker-registry >&2
    local began=$SECONDS
    if ip netns list | grep -qw "$N1\|$N2"; then
        say "the leftovers of an earlier lab: taking them down first"
        down
    fi
    trap 'say "up failed: taking down what came up"; down' ERR
    mkdir -p "$dir/registry"
    ip netns add "$N1"
    ip netns add "$N2"
    ip netns exec "$N1" ip link set lo up
    ip netns exec "$N2" ip link set lo up
    link "$N1" jdsw-12 "$A1" "$N2" jdsw-21 "$A2"
    link root jdsw-r1 "$AR" "$N1" jdsw-1r "$A1"
    link root jdsw-r2 "$AR" "$N2" jdsw-2r "$A2"
    start_engine n1 "$N1"
    start_engine n2 "$N2"
    start_registry swarm "$A1:$REGISTRY_PORT" "$N1"
    start_registry host "127.0.0.1:$REGISTRY_PORT" ""
    # a registry that wants credentials, for image nodes that pull with theirs
    local password
    password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    python3 -W ignore -c 'import crypt, sys; print("lab:" + crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))' \
        "$password" >"$dir/private.htpasswd"
    mkdir -p "$dir/registry-private"
    start_registry private-swarm "$A1:$PRIVATE_PORT" "$N1" registry-private "$dir/private.htpasswd"
    start_registry private-host "127.0.0.1:$PRIVATE_PORT" "" registry-private \
        "$dir/private.htpasswd"
    wait_engine n1
    wait_engine n2
    engine n1 swarm init --advertise-addr "$A1" >/dev/null
    engine n2 swarm join --token "$(engine n1 swarm join-token -q worker)" "$A1:2377" >/dev/null
    engine n1 node update --label-add zone=a "$(engine n1 info -f '{{.Swarm.NodeID}}')" >/dev/null
    engine n1 node update --label-add zone=b "$(engine n2 info -f '{{.Swarm.NodeID}}')" >/dev/null
    base_image
    cat >"$dir/lab.env" <<EOF
SWARM_LAB_MANAGER=unix://$dir/n1/docker.sock
SWARM_LAB_WORKER=unix://$dir/n2/docker.sock
SWARM_LAB_WORKER_PID=$dir/n2/docker.pid
SWARM_LAB_REGISTRY=127.0.0.1:$REGISTRY_PORT
SWARM_LAB_REGISTRY_PULL=$A1:$REGISTRY_PORT
SWARM_LAB_BASE_IMAGE=$A1:$REGISTRY_PORT/$base
SWARM_LAB_PRIVATE_REGISTRY=127.0.0.1:$PRIVATE_PORT
SWARM_LAB_PRIVATE_PULL=$A1:$PRIVATE_PORT
SWARM_LAB_PRIVATE_USER=lab
SWARM_LAB_PRIVATE_PASSWORD=$password
EOF
    trap - ERR
    say "up in $((SECONDS - began)) s: manager $A1, worker $A2 ($dir/lab.env)"
}

stop_pid() {  # stop_pid PIDFILE: TERM, then KILL after 10 s
    [ -f "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    kill -CONT "$pid" 2>/dev/null || true  # a host a test froze
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}

down() {
    local began=$SECONDS
    for name in swarm host private-swarm private-host; do
        stop_pid "$dir/registry-$name.pid"
    done
    for name in n2 n1; do
        # what still runs there goes first: an engine stops faster with nothing to stop
        if [ -S "$dir/$name/docker.sock" ]; then
            kill -CONT "$(cat "$dir/$name/docker.pid" 2>/dev/null || echo 0)" 2>/dev/null || true
            engine "$name" ps -aq 2>/dev/null | xargs -r timeout 20 \
                env DOCKER_HOST="unix://$dir/$name/docker.sock" docker rm -f >/dev/null 2>&1 || true
        fi
        # the dockerd inside `ip netns exec`: its own pidfile names it
        stop_pid "$dir/$name/docker.pid"
        stop_pid "$dir/$name/dockerd.pid"
    done
    for ns in "$N1" "$N2"; do ip netns del "$ns" 2>/dev/null || true; done
    for leg in jdsw-r1 jdsw-r2; do ip link del "$leg" 2>/dev/null || true; done
    rm -f "$dir/lab.env"
    # the engines' data goes too: the next `up` starts a swarm from nothing
    rm -rf "$dir/n1" "$dir/n2" "$dir/registry" "$dir/registry-private" "$dir/private.htpasswd"
    say "down in $((SECONDS - began)) s"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) cat "$dir/lab.env" ;;
    *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
