"""A fake of the Cloudflare gateway CA API on 127.0.0.1, for tests of `sshd-setup ca fetch`."""
