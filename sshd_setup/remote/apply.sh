# Apply staged files for sshd-setup. The generated header sets: RUN KIND KEEP DO_RELOAD FORCE_RELOAD RELOAD CHECK
# START MAIN PIDFILE (sshd's PidFile: empty = the default place, `none` = no pid file: ask the init system),
# REQUIRE_EXEC (helper binaries the assembled tree names, checked before any change),
# TEST_HOOK (tests only, from SSHD_SETUP_TEST_HOOK: kill-after-install | fail-reload),
# then calls: take_lock, expect + cas_check (state.sh), stage (per file in an existing directory), defines
# after_validation (users, new directories, the files in them), and finally calls `run_apply`.
# Every process started here is paid on every host, so the shell does what it can itself (no $(...) in
# loops, one tool call for many arguments) and the slow-to-start tools (systemctl) only run when needed.
# Lists (STAGED, MADE_DIRS, ...) are space-separated absolute paths (the managed-path policy refuses others)
# and are split on purpose where they are used unquoted.
# shellcheck disable=SC2153  # MAIN, KIND, ... are set by the generated header, not in this file
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
r() { printf '@@%s\n' "$*"; }
if command -v sshd >/dev/null 2>&1; then SSHD=sshd; else SSHD=/usr/sbin/sshd; fi
RESTORECON=""
command -v restorecon >/dev/null 2>&1 && RESTORECON=restorecon
BK_ROOT=/var/backups/sshd-setup
PENDING=$BK_ROOT/pending
STAGED=""
STAGE_FAILED=""
# staged /dir/name: S=/dir/.name.sshd-setup-new.RUN (unique per run; a cut run's leftovers: state.sh)
staged() { S="${1%/*}/.${1##*/}.sshd-setup-new.$RUN"; }
relabel() { [ -z "$RESTORECON" ] || "$RESTORECON" "$1" 2>/dev/null || true; }

# stage TARGET MODE|- OWNER GROUP [TEXT]: the new file beside its target, from TEXT (written by the shell's
# own printf: no process), or from base64 on stdin (a text with NUL bytes). MODE '-': copy owner and mode
# of the existing file. Written by root under umask 022, a new file already is root:root 0644.
stage() {
  staged "$1"
  if [ $# -ge 5 ]; then
    printf '%s' "$5" > "$S" || { rm -f "$S"; STAGE_FAILED="$STAGE_FAILED $1"; return 0; }
  elif ! base64 -d > "$S" 2>/dev/null; then
    rm -f "$S"; STAGE_FAILED="$STAGE_FAILED $1"; return 0
  fi
  if [ "$2" = "-" ]; then
    if [ -e "$1" ]; then chown --reference="$1" "$S" 2>/dev/null && chmod --reference="$1" "$S" 2>/dev/null; fi
  else
    { [ "$3:$4" = root:root ] || chown "$3:$4" "$S"; } && { [ "$2" = 644 ] || chmod "$2" "$S"; }
  fi || STAGE_FAILED="$STAGE_FAILED $1"
  STAGED="$STAGED $1"
}
unstage() { for t in $STAGED; do staged "$t"; rm -f "$S"; done; remove_made_dirs; }
fail() { r "FAIL $1"; shift; [ $# -gt 0 ] && { r "OUTPUT"; printf '%s\n' "$@" | base64; r "EOF"; }; unstage; r "END"; exit 3; }

# Users and directories are created only once the assembled tree validated (after_validation, generated:
# ensure_user, make_dir and the stage lines of files in those directories). Each one is reported
# (@@USER created / @@DIR created); a later failure removes the directories again (users are kept).
MADE_DIRS=""
after_validation() { :; }
make_dir() {
  [ -d "$1" ] && return 0
  install -d -m 0755 -o root -g root "$1" || fail dir "cannot create directory $1"
  MADE_DIRS="$1 $MADE_DIRS"; r "DIR created $1"
}
# fix_dir DIR: an existing directory above a managed file, set to what sshd needs (root:root 0755).
fix_dir() {
  if chown root:root "$1" && chmod 0755 "$1"; then r "DIR fixed $1"; else fail dir "cannot fix directory $1"; fi
}
remove_made_dirs() { for d in $MADE_DIRS; do rmdir "$d" 2>/dev/null && r "DIR removed $d"; done; MADE_DIRS=""; }

validate() {
  # shellcheck disable=SC2174  # /run exists: /run/sshd is the only directory made, and -m applies to it
  [ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd
  main="$MAIN"
  case " $STAGED " in *" $MAIN "*) staged "$MAIN"; main=$S;; esac
  out=$("$SSHD" -t -f "$main" 2>&1) || fail validate "$out"
  # OpenSSH >= 9.8: sshd -t does not check SshdSessionPath/SshdAuthPath, a reload dies without them.
  for x in $REQUIRE_EXEC; do
    { [ -f "$x" ] && [ -x "$x" ]; } || fail validate "$x (SshdSessionPath/SshdAuthPath) is not an executable file"
  done
  r "STEP validated"
}

# mark_pending PATH...: before the first rename (staged copies) or after a restore (the paths), say which
# files sshd-setup put in place (their sha256) in which run: until a reload succeeds (it removes the mark),
# the next run knows sshd has not loaded them, even when this run is cut right after the rename.
PENDING=$BK_ROOT/pending
mark_pending() {
  [ $# -gt 0 ] || return 0
  if ! { { echo "run $RUN"; sha256sum -- "$@"; } > "$PENDING.tmp" && mv -f "$PENDING.tmp" "$PENDING"; }; then
    fail install "cannot write $PENDING"
  fi
}
staged_copies() { STAGED_COPIES=""; for t in $STAGED; do staged "$t"; STAGED_COPIES="$STAGED_COPIES $S"; done; }

install_staged() {
  for t in $STAGED; do
    staged "$t"
    mv -f "$S" "$t" || { restore_backup; fail install "cannot rename into $t"; }
    relabel "$t"
  done
  remove_unmapped
  r "STEP installed"
}

# Principals files we wrote for mappings the inventory no longer has: in MANAGED, so the run's backup holds them.
UNMAPPED=""
remove_later() { UNMAPPED="$UNMAPPED $1"; }
remove_unmapped() { for t in $UNMAPPED; do rm -f "$t" && r "REMOVED $t"; done; }

# wait_pidfile: on SIGHUP sshd removes its pid file, closes its listening sockets and re-executes itself;
# the new sshd reads the new config and host keys, binds new sockets and only then writes its pid file.
# A pid file newer than MARK (a file written before the reload) = the new sshd listens. (Before that, a
# new login could still be served by the old sshd: proving nothing.) The test is the shell's own builtin;
# only `sleep` is a process.
wait_pidfile() {
  i=0
  while [ $i -lt 150 ]; do
    sleep 0.02  # first: the re-exec takes longer than a look right after the reload returns
    # shellcheck disable=SC3013  # -nt: in every /bin/sh we run on (dash, bash, busybox ash, mksh)
    [ "$PIDFILE" -nt "$MARK" ] && return 0
    i=$((i + 1))
  done
  return 1
}

# wait_active: sshd (or its socket) is up by the init system's word; a failing re-exec after SIGHUP takes
# a moment to show, so a first success is confirmed once more after a short pause.
wait_active() {
  i=0
  while [ $i -lt 20 ]; do
    if eval "$CHECK"; then
      sleep 0.05
      eval "$CHECK" && return 0
    fi
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

rollback_now() {
  restore_backup
  if eval "$CHECK"; then eval "$RELOAD" 9>&-; else eval "$START" 9>&-; fi  # 9: the lock, not for daemons
  if wait_active; then rm -f "$PENDING"; r "ROLLEDBACK ok"; else r "ROLLEDBACK dead"; fi
}

# ensure_user NAME: create a mapped Unix user (password disabled, with a home); never deletes users.
ensure_user() {
  getent passwd "$1" >/dev/null 2>&1 && return 0
  if command -v useradd >/dev/null 2>&1; then out=$(useradd -m -U -s /bin/sh -- "$1" 2>&1)
  else out=$(adduser -D -s /bin/sh "$1" 2>&1); fi || fail user "cannot create user $1: $out"
  r "USER created $1"
}

# reload_sshd MARK: reload, then wait until the new sshd listens (its pid file is newer than MARK, a file
# written before the reload) or, without a pid file to watch, until the init system says it is up.
# SEEN says how the reload was seen (pidfile / active). On failure: STEP (reload / inactive) and out (what
# went wrong) are set, and it returns 1.
reload_sshd() {
  MARK=$1
  if [ -z "$PIDFILE" ]; then
    for PIDFILE in /run/sshd.pid /var/run/sshd.pid; do [ -f "$PIDFILE" ] && break; done
  fi
  [ "$PIDFILE" != none ] && [ -f "$PIDFILE" ] || MARK=""  # looked at before: sshd removes it on SIGHUP
  [ "$TEST_HOOK" != fail-reload ] || { out="reload failed (test hook)"; STEP=reload; return 1; }
  if ! out=$(eval "$RELOAD" 2>&1 9>&-); then STEP=reload; return 1; fi
  if [ -n "$MARK" ]; then
    wait_pidfile && { SEEN=pidfile; return 0; }
    # No fresh pid file (an sshd started with another PidFile; a coarse clock): ask the init system.
  fi
  wait_active && { SEEN=active; return 0; }
  out="sshd is not active after the reload"
  STEP=inactive
  return 1
}

run_apply() {
  [ -z "$STAGE_FAILED" ] || fail stage "could not stage:$STAGE_FAILED"
  validate
  after_validation
  [ -z "$STAGE_FAILED" ] || fail stage "could not stage:$STAGE_FAILED"
  # FORCE_RELOAD: nothing to write, but the running sshd has not loaded the files on disk (pending)
  [ -n "$STAGED$REMOVE$UNMAPPED" ] || [ "$KIND" = uninstall ] || [ "$FORCE_RELOAD" = 1 ] || DO_RELOAD=0
  backup "$STAGED"
  staged_copies
  # shellcheck disable=SC2086  # a list of paths: one argument each
  mark_pending $STAGED_COPIES
  install_staged
  [ "$KIND" != uninstall ] || put_back_first
  [ "$TEST_HOOK" != kill-after-install ] || kill -9 $$  # tests: a cut between the rename and the reload
  if [ "$DO_RELOAD" = 1 ]; then
    # The mark is older than the reload: an installed file keeps its mtime from staging, before sshd -t;
    # without one, the pending mark (or a fresh file) is.
    # shellcheck disable=SC2086  # the first staged path
    set -- $STAGED
    mark="$1"
    if [ -z "$mark" ]; then
      mark=$PENDING
      [ -f "$mark" ] || { mkdir -p "$BK_ROOT" && mark=$BK_ROOT/.reload-mark && : > "$mark"; }
    fi
    if ! reload_sshd "$mark"; then
      r "FAIL $STEP"; r "OUTPUT"; printf '%s\n' "$out" | base64; r "EOF"
      rollback_now; r "END"; exit 4
    fi
    rm -f "$PENDING" "$BK_ROOT/.reload-mark"
    r "STEP reloaded"; r "SEEN $SEEN"
  fi
  r "END"
}
