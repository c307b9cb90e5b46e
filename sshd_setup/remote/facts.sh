# Gather facts for sshd-setup in one round trip. Set before this: MAIN, EXTRA_FILES, META_PATHS, USERS,
# UNIT_DIRS (systemd's unit search path: core/service.py), SSHD_VERSION (the server's SSH banner; empty =
# ask `sshd -V`), SEND_BACKUP (a backup to send, or '') and LOCK_FILE (the host's lock: remote.HOST_LOCK).
# Prints @@KIND records; file contents as base64 between a record and @@EOF.
# Cheap on purpose: every process started here is paid on every host on every run (a no-op run is just
# this script), so loops, tests and globs stay in the shell and each tool runs once for all its arguments.
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
r() { printf '@@%s\n' "$*"; }
# A path through a symlink (the file or a directory on its way) is reported with its real target: the
# controller judges that by the managed-path policy and never prints a refused one. What it points at is
# read at most LINK_MAX bytes (no /proc file, no log). A dangling link is unreadable, not missing.
LINK_MAX=1048577
haslink() {
  p=$1
  while [ -n "$p" ]; do
    [ -L "$p" ] && return 0
    case "$p" in */*) p=${p%/*};; *) p="";; esac
  done
  return 1
}
sendfile() {
  case " $SEEN " in *" $1 "*) return 0;; esac
  SEEN="$SEEN $1"
  linked=""
  if haslink "$1"; then linked=1; r "LINK $1 $(readlink -f -- "$1" 2>/dev/null)"; fi
  if [ -d "$1" ]; then r "DIR $1"; return 0; fi
  if [ -L "$1" ] && [ ! -e "$1" ]; then r "UNREADABLE $1"; return 0; fi
  if [ ! -e "$1" ]; then return 0; fi  # absent: no record
  if [ ! -r "$1" ] || [ ! -f "$1" ]; then r "UNREADABLE $1"; NEED_GROUPS=1; return 0; fi
  if [ -n "$linked" ]; then r "FILE $1"; head -c "$LINK_MAX" < "$1" | base64; r "EOF"; return 0; fi
  r "FILE $1"; base64 < "$1" || true; r "EOF"
}
# scan FILE: one awk pass printing "i:ARG" (Include), "c:ARG" (TrustedUserCAKeys) and "g:" when the
# file names groups (Match Group, AllowGroups, DenyGroups): only then are users' groups looked up.
# Relative Include patterns are made absolute here (sshd: relative to /etc/ssh), so the shell may glob them.
scan() {
  awk '{ sub(/\r$/, ""); line = $0; sub(/^[ \t]+/, "", line)
         kw = tolower(line); sub(/[ \t=].*$/, "", kw)
         if (kw == "allowgroups" || kw == "denygroups" || (kw == "match" && tolower(line) ~ /group/)) print "g:"
         if (kw == "listenaddress") print "l:"
         if (line ~ /^# BEGIN sshd-setup managed block: principal mappings/) ours = 1
         else if (line ~ /^# END sshd-setup managed block/) ours = 0
         if (kw == "include") tag = "i"; else if (kw == "trustedusercakeys") tag = "c"
         else if (ours && kw == "authorizedprincipalsfile") tag = "p"
         else if (kw == "pidfile") tag = "q"; else if (kw == "sshdsessionpath" || kw == "sshdauthpath") tag = "x"
         else next
         sub(/^[^ \t=]+[ \t]*=?[ \t]*/, "", line)
         n = split(line, a, /[ \t]+/)
         for (i = 1; i <= n; i++) { if (a[i] ~ /^#/) break; gsub(/["\047]/, "", a[i]); if (a[i] == "") continue
           if (tag == "i" && a[i] !~ /^\//) a[i] = "/etc/ssh/" a[i]
           print tag ":" a[i] } }' "$1" 2>/dev/null
}
follow() {
  [ "$2" -gt 16 ] && return 0
  sendfile "$1"
  { [ -f "$1" ] && [ -r "$1" ]; } || return 0
  includes=""
  for word in $(scan "$1"); do
    case "$word" in
      i:*) includes="$includes ${word#i:}";;
      c:*) CAS="$CAS ${word#c:}";;
      p:*) OURS="$OURS ${word#p:}";;
      q:/*) PIDFILE_SET="$PIDFILE_SET ${word#q:}";;
      x:/*) HELPERS="$HELPERS ${word#x:}";;
      g:) NEED_GROUPS=1;;
      l:) NEED_ADDRS=1;;
    esac
  done
  for pattern in $includes; do
    case "${pattern%/*}" in *[*?[]*) ;; *) [ -d "${pattern%/*}" ] && STAT_DIRS="$STAT_DIRS ${pattern%/*}";; esac
    for f in $pattern; do
      [ -e "$f" ] || [ -L "$f" ] || continue  # a dangling link a glob lists: sshd cannot read it
      case " $SEEN " in *" $f "*) continue;; esac
      follow "$f" $(($2 + 1))
    done
  done
}
# unitlines UNIT FILE: its ExecStart= and EnvironmentFile= lines (how sshd is started: -f, -p, -o), read
# by the shell itself; a word after -f names the config file sshd really reads.
unitlines() {
  [ -f "$2" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    # shellcheck disable=SC2086  # the command line split into words (set -f: not expanded as patterns)
    case "$line" in
      ExecStart=*) r "EXEC $1 ${line#ExecStart=}"; set -f; startwords ${line#ExecStart=}; set +f;;
      EnvironmentFile=*) r "ENVFILE $1 ${line#EnvironmentFile=}";;
    esac
  done < "$2"
}
startwords() {
  while [ $# -gt 0 ]; do
    case "$1" in -f) [ $# -gt 1 ] && START_MAIN=$2;; -f/*) START_MAIN=${1#-f};; esac
    shift
  done
}
START_MAIN=""
SEEN=""
STAT_DIRS=""
PIDFILE_SET=""
CAS=""
OURS=""
NEED_GROUPS=""
NEED_ADDRS=""
HELPERS=""
r "BEGIN 1"
for f in /etc/os-release /usr/lib/os-release; do  # read by the shell itself: short KEY=value lines
  [ -r "$f" ] || continue
  while IFS= read -r line || [ -n "$line" ]; do r "OSR $line"; done < "$f"
  break
done
if [ -n "$SSHD_VERSION" ]; then r "SSHDV $SSHD_VERSION"
else
  SSHD=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
  r "SSHDV $("$SSHD" -V 2>&1 | head -n 1)"
fi
if [ -d /run/systemd/system ]; then
  r "INIT systemd"
  # Unit files found in systemd's search path (first wins; a link to /dev/null is masked). Only an
  # enabled ssh socket makes the unit's live state matter, and only then is systemctl asked (~10 ms).
  ASK_SYSTEMD=""
  for u in ssh.service sshd.service ssh.socket sshd.socket ssh@.service sshd@.service; do
    for d in $UNIT_DIRS; do
      if [ -L "$d/$u" ] || [ -e "$d/$u" ]; then
        # shellcheck disable=SC3013  # -ef: in every /bin/sh we run on (dash, bash, busybox ash, mksh)
        if [ "$d/$u" -ef /dev/null ]; then r "UNITFILE $u masked"; else r "UNITFILE $u loaded"; fi
        case "$u" in *.service) for f in "$d/$u" /etc/systemd/system/"$u".d/*.conf; do unitlines "$u" "$f"; done;; esac
        break
      fi
    done
  done
  for f in /etc/systemd/system/*.wants/ssh.socket /etc/systemd/system/*.wants/sshd.socket; do
    if [ -L "$f" ] || [ -e "$f" ]; then ASK_SYSTEMD=1; fi
  done
  if [ -n "$ASK_SYSTEMD" ]; then
    r "SYSTEMD"
    systemctl show -p Id -p LoadState -p ActiveState -p UnitFileState -p Listen -p Accept -p KillMode \
      -p NeedDaemonReload -p DropInPaths ssh.service sshd.service ssh.socket sshd.socket 2>/dev/null | base64
    r "EOF"
    # The sockets' drop-ins in every unit directory (as systemd: a name in a higher directory hides the same
    # name below it), so files written but not yet daemon-reloaded are judged too.
    for u in ssh.socket sshd.socket; do
      seen=" "
      for d in $UNIT_DIRS; do
        for f in "$d/$u.d"/*.conf; do
          [ -f "$f" ] || continue
          case "$seen" in *" ${f##*/} "*) continue;; esac
          seen="$seen${f##*/} "
          r "DROPIN $f"; base64 < "$f"; r "EOF"
        done
      done
    done
  fi
elif command -v rc-service >/dev/null 2>&1; then r "INIT openrc"
else r "INIT sysvinit"; fi
for f in /etc/default/ssh /etc/sysconfig/sshd; do  # start options (SSHD_OPTS, OPTIONS) by the shell itself
  [ -r "$f" ] || continue
  while IFS= read -r line || [ -n "$line" ]; do
    # shellcheck disable=SC2086  # the options split into words (set -f: not expanded as patterns)
    case "$line" in SSHD_OPTS=*|OPTIONS=*) r "ENV $f $line"; v=${line#*=}; v=${v#[\"\']}; set -f; startwords ${v%[\"\']}; set +f;; esac
  done < "$f"
done
follow "$MAIN" 0
[ -e "$MAIN" ] || follow /usr/etc/ssh/sshd_config 0
case "$START_MAIN" in /*) [ "$START_MAIN" = "$MAIN" ] || { r "STARTMAIN $START_MAIN"; follow "$START_MAIN" 0; };; esac
for f in $EXTRA_FILES; do sendfile "$f"; done
# Principals files named in our mappings block (one no longer mapped is removed when we wrote it).
for f in $OURS; do case "$f" in /*) sendfile "$f";; esac; done
# CA files named anywhere in the tree (a foreign TrustedUserCAKeys to merge or report), crypto policy.
for f in $CAS; do
  case "$f" in /*) sendfile "$f";; none) ;; *) sendfile "/etc/ssh/$f";; esac
done
for f in /etc/crypto-policies/back-ends/opensshserver.config /etc/sysconfig/sshd; do
  [ -e "$f" ] && sendfile "$f"
done
present=""
for p in $META_PATHS; do
  if [ -e "$p" ]; then present="$present $p"; else r "META -:-:-:missing:$p"; fi
done
# Times too: whether the running sshd has loaded the tree is its pid file (written once it has read the
# config, at start and after each reload's re-exec) against every tree file, Include directory and the
# marker sshd-setup leaves when it installed files without (yet) reloading. One stat for all of them.
PENDING=/var/backups/sshd-setup/pending
for p in $HELPERS; do [ -e "$p" ] || r "META -:-:-:missing:$p"; done
for p in $SEEN $STAT_DIRS /run/sshd.pid /var/run/sshd.pid $PIDFILE_SET $PENDING $HELPERS; do
  case " $present " in *" $p "*) continue;; esac
  [ -e "$p" ] && present="$present $p"
done
# shellcheck disable=SC2086  # a list of paths
[ -z "$present" ] || stat -L -c '@@META %U:%G:%a:%F:%.9Y:%n' -- $present 2>/dev/null
[ -f "$PENDING" ] && { r "PENDING"; base64 < "$PENDING"; r "EOF"; }
for p in /run/sshd.pid /var/run/sshd.pid $PIDFILE_SET; do  # is the pid in it alive? (builtins only)
  [ -f "$p" ] || continue
  pid=""; read -r pid < "$p" 2>/dev/null || true
  case "$pid" in ''|*[!0-9]*) r "SSHDPID dead $p";; *) if [ -d "/proc/$pid" ]; then r "SSHDPID alive $p"; else r "SSHDPID dead $p"; fi;; esac
done
if [ -n "$NEED_ADDRS" ]; then  # a ListenAddress: the host's own addresses (sshd cannot bind others)
  addrs=""
  ip -o addr show 2>/dev/null | { while read -r _n _dev _fam addr _rest; do addrs="$addrs ${addr%/*}"; done; [ -z "$addrs" ] || r "ADDRS$addrs"; }
fi
r "USERS $USERS"
if [ -n "$USERS" ]; then
  # shellcheck disable=SC2086  # a list of user names
  getent passwd $USERS 2>/dev/null | while IFS=: read -r name _pw uid _gid _gecos home _shell; do
    r "USER $name $uid $home"
    [ -z "$NEED_GROUPS" ] || r "GROUPS $name $(id -Gn "$name" 2>/dev/null)"
  done
fi
# Another run holding the host's lock (state.sh) is changing the host now: its "RUN PID TIME" line, only when
# the lock is really held (a dead run's line stays until the next run takes the lock over: never blocks).
owner=""
[ -s "$LOCK_FILE" ] && read -r owner < "$LOCK_FILE"
if [ -n "$owner" ] && command -v flock >/dev/null 2>&1; then
  flock -n "$LOCK_FILE" true 2>/dev/null || r "LOCKED $owner"
fi
# Complete backups (runs/NAME/complete, written last): @@RUN seq name kind first changed-paths, and, when
# SEND_BACKUP names one (or `first`, or `latest`: the newest not taken by a rollback), its manifest and
# files and the current files it covers.
backups=""
send=""
best=0
for c in /var/backups/sshd-setup/runs/*/complete; do
  [ -f "$c" ] || continue
  d=${c%/complete}; seq=0; kind=""; first=0; changed=""
  while read -r k v; do
    case "$k" in seq) seq=$v;; kind) kind=$v;; first) first=$v;; changed) changed=$v;; esac
  done < "$c"
  r "RUN $seq ${d##*/} $kind $first $changed"
  backups="$backups ${d##*/}"
  case "$SEND_BACKUP" in "${d##*/}") send=$d;; first) [ "$first" = 1 ] && send=$d;;
    latest) [ "$kind" != rollback ] && [ "$seq" -gt "$best" ] && { best=$seq; send=$d; };; esac
done
r "BACKUPS$backups"
if [ -n "$send" ]; then
  r "BKNAME ${send##*/}"
  while read -r kind sum t; do
    r "BKM $kind $sum $t"
    [ "$kind" = existed ] && { r "BKFILE $t"; base64 < "$send/files$t"; r "EOF"; }
    case "$kind" in existed|absent) sendfile "$t";; esac
  done < "$send/manifest"
fi
r "END"
