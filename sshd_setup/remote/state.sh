# Host state for sshd-setup (loaded after apply.sh): the per-host lock, compare-and-swap, whole-state
# backups and restores proved by hash. The generated header sets RUN (the controller's run id), KIND
# (apply / rollback / uninstall), KEEP, MANAGED (the files this run plans), NEW_DIRS (directories it
# creates, that did not exist) and LOCK_FILE (the host's lock: remote.HOST_LOCK, the file facts.sh
# reports too). Lists (MANAGED, present, left, ...) are space-separated absolute paths, split on purpose
# where they are used unquoted.
# shellcheck disable=SC2153  # MAIN, KIND, ... are set by the generated header, not in this file
BK_RUNS="$BK_ROOT/runs"
LOCK_HELD=""
PROTECT=""
PROOF_SKIP=""
EXPECT=""
REMOVE=""
BK_DONE=""

# take_lock: an flock(2) on LOCK_FILE held by this shell's fd 9 until this shell exits: its EXIT trap
# (release_lock) empties the owner line and closes fd 9. The session's shell outlives the apply script;
# the controller closes the session after the lockout guard, and the shell's exit releases the lock.
# The kernel drops the lock of a dead process, so a dead run never blocks; the owner line it left behind
# ("RUN PID TIME", emptied on a clean release) is reported as taken over. The same run may re-enter
# (the guard's rollback runs in a second session while the first still holds the lock).
take_lock() {
  command -v flock >/dev/null 2>&1 || fail lock "flock(1) is not installed on this host"
  exec 9>>"$LOCK_FILE" || fail lock "cannot open $LOCK_FILE"
  owner=""
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  i=0
  until flock -n 9; do
    # held: name the holder. Its line is written right after it took the lock and emptied right before
    # it lets go, so an empty line is a holder starting or leaving: ask the lock again (a lock freed
    # meanwhile is ours) until the line shows, for at most 5 s.
    read -r owner < "$LOCK_FILE"
    if [ -n "$owner" ] || [ $i -ge 100 ]; then
      exec 9>&-
      case "$owner" in "$RUN "*) r "LOCK joined"; return 0;; esac
      fail lock "held by run ${owner:-(starting)}"
    fi
    sleep 0.05; i=$((i + 1))
  done
  read -r owner < "$LOCK_FILE"
  [ -z "$owner" ] || r "LOCK took-over $owner"
  LOCK_HELD=1
  trap release_lock EXIT
  printf '%s %s %s\n' "$RUN" "$$" "$now" > "$LOCK_FILE"
  r "LOCK held"
  clean_leftovers
}

release_lock() {
  [ -n "$LOCK_HELD" ] || return 0
  : > "$LOCK_FILE"
  LOCK_HELD=""
  exec 9>&-
}

# clean_leftovers: staged files and restore copies a cut run left beside the managed files, and backups
# it did not finish (no `complete` marker). Only under the lock: no other run is staging now.
clean_leftovers() {
  left=""
  for t in $MANAGED; do
    for f in "${t%/*}/.${t##*/}".sshd-setup-new* "$t".sshd-setup-rb; do [ -e "$f" ] && left="$left $f"; done
  done
  for d in "$BK_RUNS"/*; do [ -d "$d" ] && [ ! -f "$d/complete" ] && left="$left $d"; done
  # shellcheck disable=SC2086  # a list of paths
  [ -z "$left" ] || { rm -rf $left; r "CLEANED$left"; }
}

# expect PATH SHA256|absent: the content the plan was made from (compare-and-swap, checked by cas_check).
expect() { EXPECT="$EXPECT $1=$2"; }

cas_check() {
  present=""
  for e in $EXPECT; do [ "${e#*=}" = absent ] || present="$present ${e%=*}"; done
  sums=""
  # shellcheck disable=SC2086  # a list of paths
  [ -z "$present" ] || sums=$(sha256sum -- $present 2>/dev/null)
  sums="
$sums
"
  bad=""
  for e in $EXPECT; do
    t=${e%=*}; want=${e#*=}
    if [ "$want" = absent ]; then [ -e "$t" ] && bad="$bad $t"
    else case "$sums" in *"
$want  $t
"*) ;; *) bad="$bad $t";; esac
    fi
  done
  [ -z "$bad" ] || fail cas "changed since facts were read:$bad"
}

# list_backups: BKS = "seq:name:first" of every complete backup; LAST / LAST_SEQ the newest by run
# order (a counter kept on the host, never a clock); FIRST_BK the host as it was before sshd-setup.
list_backups() {
  BKS=""; LAST=""; LAST_SEQ=0; FIRST_BK=""
  for c in "$BK_RUNS"/*/complete; do
    [ -f "$c" ] || continue
    d=${c%/complete}; seq=0; first=0
    while read -r k v; do case "$k" in seq) seq=$v;; first) first=$v;; esac; done < "$c"
    BKS="$BKS $seq:${d##*/}:$first"
    [ "$first" = 1 ] && FIRST_BK=${d##*/}
    if [ "$seq" -gt "$LAST_SEQ" ] 2>/dev/null; then LAST_SEQ=$seq; LAST=${d##*/}; fi
  done
}

# manifest_paths NAME: FILES and DIRS that backup NAME holds.
manifest_paths() {
  FILES=""; DIRS=""
  [ -f "$BK_RUNS/$1/manifest" ] || return 0
  while read -r kind _sum t; do
    case "$kind" in existed|absent) FILES="$FILES $t";; dir|nodir) DIRS="$DIRS $t";; esac
  done < "$BK_RUNS/$1/manifest"
}

# snapshot DIR FILES DIRS NEW: append to DIR/manifest the state of each file (existed SHA / absent, with a
# copy under DIR/files) and directory (dir / nodir; those in NEW did not exist before this run).
snapshot() {
  into=$1; sfiles=$2; sdirs=$3; snew=$4
  present=""
  for t in $sfiles; do if [ -f "$t" ]; then present="$present $t"; else echo "absent - $t" >> "$into/manifest"; fi; done
  for t in $sdirs; do
    case " $snew " in
      *" $t "*) echo "nodir - $t";;
      *) if [ -d "$t" ]; then echo "dir - $t"; else echo "nodir - $t"; fi;;
    esac
  done >> "$into/manifest"
  [ -n "$present" ] || return 0
  parents=""
  for t in $present; do parents="$parents $into/files${t%/*}"; done
  # shellcheck disable=SC2086  # lists of paths
  mkdir -p $parents || return 1
  # shellcheck disable=SC2086
  sha256sum -- $present | while read -r sum t; do echo "existed $sum $t"; done >> "$into/manifest" || return 1
  for t in $present; do cp -a -L "$t" "$into/files$t" || return 1; done  # -L: a symlink's content
  # the copies are proved before the backup counts
  while read -r kind sum t; do [ "$kind" = existed ] && echo "$sum  $into/files$t"; done < "$into/manifest" |
    sha256sum -c >/dev/null 2>&1
}

# backup CHANGED: a COMPLETE snapshot (every path sshd-setup manages or has managed here: MANAGED, NEW_DIRS
# and all an earlier backup holds) named RUN, marked `complete` last. A path managed for the first time
# is added, as it is now (untouched by us), to every earlier backup, so each stays complete.
backup() {
  list_backups
  manifest_paths "$LAST"
  files=$FILES; dirs=$DIRS; added=""; added_dirs=""
  for t in $MANAGED; do case " $files " in *" $t "*) ;; *) files="$files $t"; added="$added $t";; esac; done
  for t in $NEW_DIRS; do case " $dirs " in *" $t "*) ;; *) dirs="$dirs $t"; added_dirs="$added_dirs $t";; esac; done
  BK="$BK_RUNS/$RUN"
  [ ! -e "$BK" ] || fail backup "a backup named $RUN exists already"
  umask 077  # a new BK_ROOT and everything below it: root only
  mkdir -p "$BK/files" || fail backup "cannot create $BK"
  umask 022
  snapshot "$BK" "$files" "$dirs" "$NEW_DIRS" || { rm -rf "$BK"; fail backup "cannot back up to $BK (disk full?)"; }
  if [ -n "$added$added_dirs" ]; then
    for e in $BKS; do
      n=${e#*:}; n=${n%:*}
      snapshot "$BK_RUNS/$n" "$added" "$added_dirs" "$NEW_DIRS" || fail backup "cannot extend backup $n"
    done
  fi
  first=0; [ -n "$BKS" ] || first=1
  printf 'seq %s\nkind %s\nfirst %s\nrun %s\nchanged%s\n' $((LAST_SEQ + 1)) "$KIND" "$first" "$RUN" "$1" \
    > "$BK/complete" || { rm -rf "$BK"; fail backup "cannot finish $BK (disk full?)"; }
  BK_DONE=1
  r "BACKUP $RUN"
  prune
}

# prune: keep KEEP backups by run order (the one just taken among them) plus the first, which is never
# removed, nor is PROTECT (the backup a rollback is restoring). A backup loses its `complete` marker
# first (rm takes its operands in order).
prune() {
  while :; do
    list_backups
    count=0; oldest=""; oldest_seq=0
    for e in $BKS; do
      seq=${e%%:*}; n=${e#*:}; first=${n##*:}; n=${n%:*}
      [ "$first" = 1 ] && continue
      count=$((count + 1))
      [ "$n" = "$RUN" ] || [ "$n" = "$PROTECT" ] && continue
      if [ -z "$oldest" ] || [ "$seq" -lt "$oldest_seq" ]; then oldest=$n; oldest_seq=$seq; fi
    done
    [ "$count" -gt "$KEEP" ] && [ -n "$oldest" ] || return 0
    rm -rf "$BK_RUNS/${oldest:?}/complete" "$BK_RUNS/${oldest:?}"
  done
}

# put_file COPY PATH: COPY (owner, mode, times kept) into PATH atomically; through a symlink to its target.
put_file() {
  to=$2
  [ ! -L "$to" ] || to=$(readlink -f "$to")
  cp -a "$1" "$to.sshd-setup-rb" && mv -f "$to.sshd-setup-rb" "$to" && relabel "$to"
}

# restore_from NAME: every path back as backup NAME holds it (copied in, removed, directories we made
# removed), then proved: @@RESTORED NAME, or @@RESTORE-INCOMPLETE with the paths that differ.
restore_from() {
  put_back_from "$BK_RUNS/$1" ""
  prove_restore "$1"
}

# put_back_from BACKUP-DIR SKIP: every path of the backup but those in SKIP as it was then: its
# directories made first, files copied in or removed, the directories it did not have removed.
put_back_from() {
  rdirs=""
  make_dirs "$1"
  while read -r kind _sum t; do
    case " $2 " in *" $t "*) continue;; esac
    case "$kind" in
      existed) put_file "$1/files$t" "$t";;
      absent) [ ! -e "$t" ] || rm -f "$t";;
      nodir) rdirs="$t $rdirs";;
    esac
  done < "$1/manifest"
  for t in $rdirs; do [ ! -d "$t" ] || rmdir "$t" 2>/dev/null; done
}

# make_dirs BACKUP-DIR: directories that existed then and are gone now (root 0755, as apply makes them).
make_dirs() {
  missing=""
  while read -r kind _sum t; do [ "$kind" = dir ] && [ ! -d "$t" ] && missing="$missing $t"; done < "$1/manifest"
  # shellcheck disable=SC2086  # a list of paths
  [ -z "$missing" ] || install -d -m 0755 -o root -g root $missing
}

# prove_restore NAME: compare every path with backup NAME by sha256 (absent ones must be absent), but
# those in PROOF_SKIP (uninstall writes sshd_config itself).
prove_restore() {
  [ -f "$BK_RUNS/$1/manifest" ] || { r "RESTORE-INCOMPLETE (backup $1 is gone)"; return 1; }
  present=""
  while read -r kind _sum t; do [ "$kind" = existed ] && present="$present $t"; done < "$BK_RUNS/$1/manifest"
  sums=""
  # shellcheck disable=SC2086  # a list of paths
  [ -z "$present" ] || sums=$(sha256sum -- $present 2>/dev/null)
  sums="
$sums
"
  bad=""
  while read -r kind sum t; do
    case " $PROOF_SKIP " in *" $t "*) continue;; esac
    case "$kind" in
      existed) case "$sums" in *"
$sum  $t
"*) ;; *) bad="$bad $t";; esac;;
      absent) [ ! -e "$t" ] || bad="$bad $t";;
      nodir) [ ! -d "$t" ] || bad="$bad $t";;
    esac
  done < "$BK_RUNS/$1/manifest"
  if [ -n "$bad" ]; then r "RESTORE-INCOMPLETE$bad"; return 1; fi
  r "RESTORED $1"
}

# restore_backup: the apply script's own undo: the snapshot this run took.
restore_backup() { [ -z "$BK_DONE" ] || restore_from "$RUN"; }

# remove PATH: uninstall deletes PATH when no first backup says what was there.
remove() { REMOVE="$REMOVE $1"; }

# put_back_first (uninstall, after the staged files are installed): every other path the first backup
# holds (the host before sshd-setup) put back as it was then; without a first backup, REMOVE deleted.
put_back_first() {
  list_backups
  if [ -n "$FIRST_BK" ]; then
    put_back_from "$BK_RUNS/$FIRST_BK" "$STAGED"
  else
    for t in $REMOVE; do [ ! -e "$t" ] || rm -f "$t"; done
  fi
  r "STEP put-back $FIRST_BK"
  PROOF_SKIP=$STAGED
  [ -z "$FIRST_BK" ] || prove_restore "$FIRST_BK" || true
  PROOF_SKIP=""
}

# rollback_to NAME SAVE: restore backup NAME (staged, validated, installed, proved, reloaded). SAVE=1:
# first a complete backup of the current state, so the rollback itself can be undone with --to.
rollback_to() {
  take_lock
  B="$BK_RUNS/$1"
  [ -f "$B/complete" ] || fail rollback "no backup $1 on this host"
  manifest_paths "$1"
  MANAGED=$FILES
  while read -r kind _sum t; do
    [ "$kind" = existed ] || continue
    staged "$t"; cp -a "$B/files$t" "$S" && STAGED="$STAGED $t"
  done < "$B/manifest"
  # shellcheck disable=SC2174  # /run exists: /run/sshd is the only directory made, and -m applies to it
  [ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd
  main="$MAIN"; case " $STAGED " in *" $MAIN "*) staged "$MAIN"; main=$S;; esac
  if [ -e "$main" ]; then out=$("$SSHD" -t -f "$main" 2>&1) || fail validate "$out"; fi
  unstage
  STAGED=""
  PROTECT=$1
  if [ "$2" = 1 ]; then backup "$FILES"; fi
  restore_from "$1" || true
  set --  # restored files keep their old times: the pending mark says sshd has not loaded them yet
  while read -r kind _sum t; do [ "$kind" = existed ] && set -- "$@" "$t"; done < "$B/manifest"
  mark_pending "$@"
  r "STEP installed"
  if [ "$DO_RELOAD" = 1 ]; then
    reload_sshd "" || fail "$STEP" "$out"  # restored files keep old mtimes: no pid file mark
    rm -f "$PENDING"
    r "STEP reloaded"
  fi
  r "END"
}
