"""The HPKE layer against RFC 9180's published test vectors (Appendix A.2.1, the suite the gateway uses:
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, mode Base). Fixture and its source:
tests/fixtures/rfc9180/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sshd_setup.sessionlog.crypto import Opener, OpenFailed, Sealer, public_key_of

FIXTURE = Path(__file__).parent / "fixtures" / "rfc9180" / "x25519-hkdfsha256-chacha20poly1305-base.json"


def _vector() -> dict[str, Any]:
    doc = json.loads(FIXTURE.read_text())
    assert "rfc9180" in doc["source"].lower().replace(" ", "")
    (vec,) = doc["vectors"]
    assert (vec["mode"], vec["kem_id"], vec["kdf_id"], vec["aead_id"]) == (0, 0x20, 1, 3)
    return {k: bytes.fromhex(v) if isinstance(v, str) else v for k, v in vec.items()}


V = _vector()
ENCRYPTIONS = [{k: bytes.fromhex(v) if isinstance(v, str) else v for k, v in e.items()} for e in V["encryptions"]]


def test_private_key_gives_the_published_public_key() -> None:
    assert public_key_of(V["skRm"]) == V["pkRm"]
    assert public_key_of(V["skEm"]) == V["pkEm"] == V["enc"]


def test_receiver_opens_the_first_ciphertexts_in_order() -> None:
    opener = Opener(V["skRm"], V["enc"], info=V["info"])
    in_order = [e for e in ENCRYPTIONS if e["seq"] in (0, 1, 2)]
    assert [e["seq"] for e in in_order] == [0, 1, 2]
    for e in in_order:
        assert opener.open(e["ct"], aad=e["aad"]) == e["pt"]


def test_sender_with_the_published_ephemeral_key_reproduces_every_ciphertext() -> None:
    sealer = Sealer(V["pkRm"], info=V["info"], ephemeral_private=V["skEm"])
    assert sealer.enc == V["enc"]
    by_seq = {e["seq"]: e for e in ENCRYPTIONS}
    assert len({e["pt"] for e in ENCRYPTIONS}) == 1 and max(by_seq) == 256
    for seq in range(257):  # 256 is the last published sequence number
        ct = sealer.seal(ENCRYPTIONS[0]["pt"], aad=b"Count-%d" % seq)
        if seq in by_seq:
            assert by_seq[seq]["aad"] == b"Count-%d" % seq
            assert ct == by_seq[seq]["ct"], f"sequence {seq}"


def test_receiver_opens_published_ciphertexts_at_sequence_4_255_256() -> None:
    """The receiver's sequence number advances once per open: ciphertexts sealed in between (by the
    sender, checked equal to the RFC's above) move it to the published positions."""
    sealer = Sealer(V["pkRm"], info=V["info"], ephemeral_private=V["skEm"])
    opener = Opener(V["skRm"], V["enc"], info=V["info"])
    by_seq = {e["seq"]: e for e in ENCRYPTIONS}
    pt = ENCRYPTIONS[0]["pt"]
    opened = []
    for seq in range(257):
        aad = b"Count-%d" % seq
        ours = sealer.seal(pt, aad=aad)
        ct = by_seq[seq]["ct"] if seq in by_seq else ours
        assert opener.open(ct, aad=aad) == pt
        if seq in by_seq:
            opened.append(seq)
    assert opened == [0, 1, 2, 4, 255, 256]


def test_out_of_order_wrong_aad_or_wrong_key_does_not_open() -> None:
    seq1 = ENCRYPTIONS[1]
    with pytest.raises(OpenFailed):
        Opener(V["skRm"], V["enc"], info=V["info"]).open(seq1["ct"], aad=seq1["aad"])  # needs sequence 1
    seq0 = ENCRYPTIONS[0]
    with pytest.raises(OpenFailed):
        Opener(V["skRm"], V["enc"], info=V["info"]).open(seq0["ct"], aad=b"Count-9")
    with pytest.raises(OpenFailed):
        Opener(V["skEm"], V["enc"], info=V["info"]).open(seq0["ct"], aad=seq0["aad"])
    with pytest.raises(OpenFailed):
        Opener(V["skRm"], V["enc"], info=b"").open(seq0["ct"], aad=seq0["aad"])
