# Apply staged files for sshd-setup. The generated header sets: TS KEEP DO_RELOAD RELOAD CHECK START MAIN,
# then calls: stage (heredoc base64 content), mkdirs, and finally `run_apply`.
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
r() { printf '@@%s\n' "$*"; }
SSHD=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
BK_ROOT=/var/backups/sshd-setup
STAGED=""
STAGE_FAILED=""
RESTORECON=$(command -v restorecon 2>/dev/null || true)
# /dir/name -> /dir/.name.sshd-setup-new (parameter expansion: no process per call)
staged_name() { printf '%s/.%s.sshd-setup-new' "${1%/*}" "${1##*/}"; }
relabel() { [ -z "$RESTORECON" ] || "$RESTORECON" "$1" 2>/dev/null || true; }

# stage TARGET MODE|- OWNER GROUP  < base64 content
stage() {
  tmp=$(staged_name "$1")
  if ! base64 -d > "$tmp" 2>/dev/null; then rm -f "$tmp"; STAGE_FAILED="$STAGE_FAILED $1"; return 0; fi
  if [ "$2" = "-" ] && [ -e "$1" ]; then
    chown --reference="$1" "$tmp" 2>/dev/null && chmod --reference="$1" "$tmp" 2>/dev/null
  else
    chown "$3:$4" "$tmp" && chmod "${2#-}" "$tmp"
  fi || STAGE_FAILED="$STAGE_FAILED $1"
  STAGED="$STAGED $1"
}
unstage() { for t in $STAGED; do rm -f "$(staged_name "$t")"; done; }
fail() { r "FAIL $1"; shift; [ $# -gt 0 ] && { r "OUTPUT"; printf '%s\n' "$@" | base64; r "EOF"; }; unstage; r "END"; exit 3; }

validate() {
  [ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd
  main="$MAIN"
  case " $STAGED " in *" $MAIN "*) main=$(staged_name "$MAIN");; esac
  out=$("$SSHD" -t -f "$main" 2>&1) || fail validate "$out"
  case " $STAGED " in *" $CA "*)
    out=$(ssh-keygen -l -f "$(staged_name "$CA")" 2>&1) || fail validate-ca "$out";;
  esac
  r "STEP validated"
}

backup() {
  BK="$BK_ROOT/$TS"; [ -e "$BK" ] && BK="$BK_ROOT/$TS-$$"
  mkdir -p "$BK_ROOT" && chmod 0700 "$BK_ROOT" && mkdir -p "$BK/files" || fail backup "cannot create $BK"
  for t in $STAGED; do
    if [ -e "$t" ]; then
      mkdir -p "$BK/files${t%/*}" && cp -a "$t" "$BK/files$t" || fail backup "cannot back up $t"
      echo "existed $t" >> "$BK/manifest"
    else
      echo "created $t" >> "$BK/manifest"
    fi
  done
  r "BACKUP ${BK##*/}"
  ls -1 "$BK_ROOT" | grep -E '^[0-9]{8}T[0-9]{6}' | sort -r | awk -v keep="$KEEP" 'NR > keep' |
    while read -r old; do rm -rf "${BK_ROOT:?}/$old"; done
}

install_staged() {
  for t in $STAGED; do
    mv -f "$(staged_name "$t")" "$t" || { restore_backup; fail install "cannot rename into $t"; }
    relabel "$t"
  done
  r "STEP installed"
}

restore_backup() {
  [ -f "$BK/manifest" ] || return 0
  while read -r kind t; do
    case "$kind" in
      existed) cp -a "$BK/files$t" "$t.sshd-setup-rb" && mv -f "$t.sshd-setup-rb" "$t";;
      created) rm -f "$t";;
    esac
  done < "$BK/manifest"
}

# wait_active: sshd (or its socket) is up; a failing re-exec after SIGHUP takes a moment to show,
# so a first success is confirmed once more after a short pause.
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
  if eval "$CHECK"; then eval "$RELOAD"; else eval "$START"; fi
  if wait_active; then r "ROLLEDBACK ok"; else r "ROLLEDBACK dead"; fi
}

# ensure_user NAME: create a mapped Unix user (password disabled, with a home); never deletes users.
ensure_user() {
  getent passwd "$1" >/dev/null 2>&1 && return 0
  if command -v useradd >/dev/null 2>&1; then out=$(useradd -m -U -s /bin/sh -- "$1" 2>&1)
  else out=$(adduser -D -s /bin/sh "$1" 2>&1); fi || fail user "cannot create user $1: $out"
  r "USER created $1"
}

run_apply() {
  [ -z "$STAGE_FAILED" ] || fail stage "could not stage:$STAGE_FAILED"
  [ -n "$STAGED" ] || DO_RELOAD=0
  validate
  backup
  install_staged
  if [ "$DO_RELOAD" = 1 ]; then
    if ! out=$(eval "$RELOAD" 2>&1); then r "FAIL reload"; r "OUTPUT"; printf '%s\n' "$out" | base64; r "EOF"; rollback_now; r "END"; exit 4; fi
    if ! wait_active; then r "FAIL inactive"; rollback_now; r "END"; exit 4; fi
    r "STEP reloaded"
  fi
  r "END"
}

# rollback_to BACKUP-NAME: restore a backup, validated, reloaded (used by `sshd-setup rollback`).
rollback_to() {
  BK="$BK_ROOT/$1"
  [ -f "$BK/manifest" ] || fail rollback "no backup $1 on this host"
  SAVE="$BK_ROOT/$TS"; [ -e "$SAVE" ] && SAVE="$SAVE-$$"
  mkdir -p "$SAVE/files"
  while read -r kind t; do
    if [ -e "$t" ]; then mkdir -p "$SAVE/files${t%/*}"; cp -a "$t" "$SAVE/files$t"; echo "existed $t" >> "$SAVE/manifest"
    else echo "created $t" >> "$SAVE/manifest"; fi
    case "$kind" in
      existed) cp -a "$BK/files$t" "$(staged_name "$t")" && STAGED="$STAGED $t";;
    esac
  done < "$BK/manifest"
  [ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd
  main="$MAIN"; case " $STAGED " in *" $MAIN "*) main=$(staged_name "$MAIN");; esac
  out=$("$SSHD" -t -f "$main" 2>&1) || { rm -rf "$SAVE"; fail validate "$out"; }
  r "BACKUP ${SAVE##*/}"
  while read -r kind t; do
    case "$kind" in
      existed) mv -f "$(staged_name "$t")" "$t"; relabel "$t";;
      created) rm -f "$t";;
    esac
  done < "$BK/manifest"
  r "STEP installed"
  if [ "$DO_RELOAD" = 1 ]; then
    out=$(eval "$RELOAD" 2>&1) || fail reload "$out"
    wait_active || fail inactive "sshd is not active after the reload"
    r "STEP reloaded"
  fi
  r "END"
}
