"""Session command logs in the gateway's encrypted capture format.

Layout, lowest level first:
  problems.py  — FormatError / KeyFileError (the CLI turns them into InputError, exit 2)
  crypto.py    — HPKE suite X25519 / HKDF-SHA256 / ChaCha20-Poly1305 (pyhpke), key pair generation
  keys.py      — key files: base64 of the raw 32-byte keys, private file mode 0600
  metadata.py  — the JSON header: parse (strict), serialize
  packets.py   — the packet stream inside the plaintext: encode, parse block by block into fragments
  capture.py   — capture files: read (header, then decrypt block by block) and write
  transcript.py— what decrypt puts in the ZIP: scriptreplay data/timing or raw per-direction data
  files.py     — atomic output files (temporary name beside the target, renamed when complete)
  archive.py   — decrypt a capture into a ZIP, streaming, atomically
  replay.py    — play a PTY session at its recorded pace
  summary.py   — metadata and traffic counts for `logs show`
  sessionspec.py — a session described as JSON, for `logs encrypt` (tests, demos)
  cli.py       — `sshd-setup logs ...`
"""
