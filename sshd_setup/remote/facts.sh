# Gather facts for sshd-setup in one round trip. Set before this: MAIN, EXTRA_FILES, META_PATHS, USERS.
# Prints @@KIND records; file contents as base64 between a record and @@EOF.
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
r() { printf '@@%s\n' "$*"; }
meta() {
  if [ -e "$1" ]; then r "META $(stat -L -c '%U:%G:%a:%F' -- "$1" 2>/dev/null):$1"
  else r "META -:-:-:missing:$1"; fi
}
sendfile() {
  case " $SEEN " in *" $1 "*) return 0;; esac
  SEEN="$SEEN $1"
  if [ -d "$1" ]; then r "DIR $1"; return 0; fi
  if [ ! -e "$1" ]; then r "MISSING $1"; return 0; fi
  if [ ! -r "$1" ] || [ ! -f "$1" ]; then r "UNREADABLE $1"; return 0; fi
  r "FILE $1"; base64 < "$1" || true; r "EOF"
}
# values KEYWORD FILE: the arguments of every KEYWORD line of a config file, one per line
values() {
  awk -v want="$1" '{ sub(/\r$/, ""); line = $0; sub(/^[ \t]+/, "", line)
         kw = tolower(line); sub(/[ \t=].*$/, "", kw)
         if (kw != want) next
         sub(/^[^ \t=]+[ \t]*=?[ \t]*/, "", line)
         n = split(line, a, /[ \t]+/)
         for (i = 1; i <= n; i++) { if (a[i] ~ /^#/) break; if (a[i] != "") print a[i] } }' "$2" 2>/dev/null
}
follow() {
  [ "$2" -gt 16 ] && return 0
  sendfile "$1"
  { [ -f "$1" ] && [ -r "$1" ]; } || return 0
  CONFIGS="$CONFIGS $1"
  for pattern in $(values include "$1" | tr -d "\"'"); do
    case "$pattern" in /*) ;; *) pattern="/etc/ssh/$pattern";; esac
    for f in $pattern; do
      [ -e "$f" ] || continue
      case " $SEEN " in *" $f "*) continue;; esac
      follow "$f" $(($2 + 1))
    done
  done
}
SEEN=""
CONFIGS=""
r "BEGIN 1"
r "OSRELEASE"; { cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; } | base64; r "EOF"
SSHD=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
r "SSHDV $("$SSHD" -V 2>&1 | head -n 1)"
if [ -d /run/systemd/system ]; then
  r "INIT systemd"
  r "SYSTEMD"
  systemctl show -p Id -p LoadState -p ActiveState -p UnitFileState -p Listen \
    ssh.service sshd.service ssh.socket sshd.socket 2>/dev/null | base64
  r "EOF"
  for f in /etc/systemd/system/ssh.socket.d/*.conf; do
    [ -f "$f" ] && { r "DROPIN $f"; base64 < "$f"; r "EOF"; }
  done
elif command -v rc-service >/dev/null 2>&1; then r "INIT openrc"
else r "INIT sysvinit"; fi
follow "$MAIN" 0
[ -e "$MAIN" ] || follow /usr/etc/ssh/sshd_config 0
for f in $EXTRA_FILES; do sendfile "$f"; done
# CA files named anywhere in the tree (a foreign TrustedUserCAKeys to merge or report), crypto policy.
for c in $CONFIGS; do
  for f in $(values trustedusercakeys "$c" | tr -d "\"'"); do
    case "$f" in /*) sendfile "$f";; none) ;; *) sendfile "/etc/ssh/$f";; esac
  done
done
for f in /etc/crypto-policies/back-ends/opensshserver.config /etc/sysconfig/sshd; do
  [ -e "$f" ] && sendfile "$f"
done
for p in $META_PATHS; do meta "$p"; done
for u in $USERS; do
  line=$(getent passwd "$u" 2>/dev/null) || line=""
  if [ -n "$line" ]; then
    IFS=: read -r _name _pw uid _gid _gecos home _shell <<EOF_USER
$line
EOF_USER
    groups=$(id -Gn "$u" 2>/dev/null)
    r "USER $u $uid $home $(printf '%s' "$groups" | sed 's/ /,/g')"
  else r "NOUSER $u"; fi
done
r "BACKUPS $(ls -1 /var/backups/sshd-setup 2>/dev/null | grep -E '^[0-9]{8}T[0-9]{6}' | tr '\n' ' ')"
r "END"
