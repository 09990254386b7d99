# Helpers shared by hack/up, down, status, lws-up, lws-down, prometheus-up/down.
# Source it after lib.sh; do not run it.
#
# Every process the local cluster runs has a PID file under $MODELPLANE_RUN/pids
# and a log under $MODELPLANE_RUN/logs. A PID counts as ours only when the process
# is alive and its command line names $MODELPLANE_RUN (every component gets a path
# under it), so a recycled PID or a second checkout's cluster is never touched.

PKI=$MODELPLANE_RUN/pki
PIDS=$MODELPLANE_RUN/pids
LOGS=$MODELPLANE_RUN/logs
KUBECONFIG_FILE=$MODELPLANE_RUN/kubeconfig

# The components in start order; down stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# pid_of NAME: print the PID of our running NAME, or fail.
pid_of() {
  local f=$PIDS/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$MODELPLANE_RUN/" || return 1
  echo "$pid"
}

running() { pid_of "$1" >/dev/null; }

# port_busy PORT: is something listening on 127.0.0.1:PORT (or on all addresses)?
port_busy() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# launch NAME BINARY ARGS...: start a component in its own session, detached from
# the caller's terminal and process group, and record its PID.
launch() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  printf '\n===== %s starting %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

# stop NAME... : TERM them all, wait up to STOP_TIMEOUT seconds (default 15) for
# them to exit, then KILL what is left; removes their PID files.
stop() {
  local name pid i timeout=${STOP_TIMEOUT:-15}
  local -A pids=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      pids[$name]=$pid
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < timeout * 10; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not stop in ${timeout}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  done
  for name in "$@"; do rm -f "$PIDS/$name.pid"; done
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: poll until COMMAND succeeds.
# WATCH (optional) names a component whose death aborts the wait early.
wait_for() {
  local what=$1 timeout=$2 start=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "${WATCH:-}" ] && ! running "$WATCH"; then
      die "$WATCH exited while waiting for $what; see $LOGS/$WATCH.log:
$(tail -n 20 "$LOGS/$WATCH.log" 2>/dev/null)"
    fi
    ((SECONDS - start < timeout)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

# need_bin NAME: the path of a binary, or a hint to build it.
need_bin() {
  find_bin "$1" || die "$1 not found: run hack/build (or set MODELPLANE_BIN_DIR / KUBEBUILDER_ASSETS)"
}

# https_get URL: GET with the admin client certificate (anonymous probes may be refused).
https_get() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$1"
}

apiserver_ready() { https_get "https://127.0.0.1:$APISERVER_PORT/readyz"; }

# sign NAME SUBJECT EXTENSIONS: a leaf key and certificate signed by our CA.
sign() {
  local name=$1 subj=$2 ext=$3
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" \
    -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -out "$PKI/$name.crt" -extfile <(printf '%b' "$ext") 2>/dev/null
  rm -f "$PKI/$name.csr"
  chmod 600 "$PKI/$name.key"
}
