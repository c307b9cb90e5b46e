"""The gateway's API: fetch its SSH CA public key."""
