"""OpenSSH knowledge: keyword names, Match keywords, version thresholds, algorithm lists.

Tables only, so that a new OpenSSH release is one reviewable diff."""

from __future__ import annotations

PRINCIPAL_KEYWORDS = ("authorizedprincipalsfile", "authorizedprincipalscommand", "authorizedprincipalscommanduser")
CERT_KEYWORDS = ("pubkeyauthentication", "trustedusercakeys", *PRINCIPAL_KEYWORDS)
WATCHED_KEYWORDS = (*CERT_KEYWORDS, "authorizedkeysfile")
ACCESS_KEYWORDS = ("denyusers", "allowusers", "denygroups", "allowgroups")  # in the order sshd checks them
CANONICAL = {
    "pubkeyauthentication": "PubkeyAuthentication",
    "trustedusercakeys": "TrustedUserCAKeys",
    "authorizedprincipalsfile": "AuthorizedPrincipalsFile",
    "authorizedprincipalscommand": "AuthorizedPrincipalsCommand",
    "authorizedprincipalscommanduser": "AuthorizedPrincipalsCommandUser",
    "authorizedkeysfile": "AuthorizedKeysFile",
    "pubkeyacceptedalgorithms": "PubkeyAcceptedAlgorithms",
    "casignaturealgorithms": "CASignatureAlgorithms",
    "authenticationmethods": "AuthenticationMethods",
    "include": "Include",
    "port": "Port",
    "listenaddress": "ListenAddress",
    "allowusers": "AllowUsers",
    "denyusers": "DenyUsers",
    "allowgroups": "AllowGroups",
    "denygroups": "DenyGroups",
}
YES_NO_KEYWORDS = frozenset({"pubkeyauthentication"})


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


# Keywords sshd accepts inside a Match block (SSHCFG_ALL in servconf.c of OpenSSH 9.2); any other keyword
# in a block that is inactive at start-up is fatal: "Directive 'X' is not allowed within a Match block".
MATCH_KEYWORDS = frozenset(
    _words(
        """permitrootlogin loglevel logverbose rhostsrsaauthentication hostbasedauthentication
    hostbasedusesnamefrompacketonly hostbasedacceptedalgorithms hostbasedacceptedkeytypes rsaauthentication
    pubkeyauthentication pubkeyacceptedalgorithms pubkeyacceptedkeytypes pubkeyauthoptions kerberosauthentication
    gssapiauthentication passwordauthentication kbdinteractiveauthentication challengeresponseauthentication
    skeyauthentication ignorerhosts x11forwarding x11displayoffset x11uselocalhost permitemptypasswords rekeylimit
    allowtcpforwarding allowagentforwarding allowusers denyusers allowgroups denygroups gatewayports maxauthtries
    maxsessions banner clientaliveinterval clientalivecountmax authorizedkeysfile authorizedkeysfile2 acceptenv
    setenv permittunnel permittty permituserrc match permitopen permitlisten forcecommand chrootdirectory
    revokedkeys trustedusercakeys authorizedprincipalsfile include ipqos authorizedkeyscommand
    authorizedkeyscommanduser authorizedprincipalscommand authorizedprincipalscommanduser authenticationmethods
    streamlocalbindmask streamlocalbindunlink allowstreamlocalforwarding disableforwarding exposeauthinfo rdomain
    casignaturealgorithms requiredrsasize channeltimeout unusedconnectiontimeout"""
    )
)
# Keywords that became allowed inside Match later: (keyword, version).
MATCH_KEYWORDS_SINCE = {"subsystem": (9, 5)}
# Keywords that sshd refuses when it is older than (major, minor).
MIN_VERSION = {
    "trustedusercakeys": (5, 4),
    "authorizedprincipalsfile": (5, 6),
    "authorizedprincipalscommand": (6, 9),
    "authorizedprincipalscommanduser": (6, 9),
    "include": (7, 3),
    "casignaturealgorithms": (7, 9),
    "pubkeyacceptedalgorithms": (8, 5),
}
MATCH_ALL_VERSION = (6, 5)
# The OpenSSH release that first reads each CA key type (ssh-rsa: always). This replaces running ssh-keygen
# on the host: sshd -t does not read TrustedUserCAKeys, so a key type the host cannot parse would only show
# as certificate logins failing after the reload.
CA_KEY_TYPE_VERSION = {
    "ecdsa-sha2-nistp256": (5, 7),
    "ecdsa-sha2-nistp384": (5, 7),
    "ecdsa-sha2-nistp521": (5, 7),
    "ssh-ed25519": (6, 5),
    "sk-ssh-ed25519@openssh.com": (8, 2),
    "sk-ecdsa-sha2-nistp256@openssh.com": (8, 2),
}

# Algorithm lists of OpenSSH 9.x (`sshd -T` defaults, `ssh -Q key-sig`, `ssh -Q sig`).
DEFAULT_PUBKEY_ALGORITHMS = _words(
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,"
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,"
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)
DEFAULT_CA_SIGNATURE_ALGORITHMS = _words(
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)
ALL_KEY_ALGORITHMS = _words(
    "ssh-ed25519 ssh-ed25519-cert-v01@openssh.com sk-ssh-ed25519@openssh.com sk-ssh-ed25519-cert-v01@openssh.com "
    "ecdsa-sha2-nistp256 ecdsa-sha2-nistp256-cert-v01@openssh.com ecdsa-sha2-nistp384 "
    "ecdsa-sha2-nistp384-cert-v01@openssh.com ecdsa-sha2-nistp521 ecdsa-sha2-nistp521-cert-v01@openssh.com "
    "sk-ecdsa-sha2-nistp256@openssh.com sk-ecdsa-sha2-nistp256-cert-v01@openssh.com "
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com ssh-dss ssh-dss-cert-v01@openssh.com ssh-rsa "
    "ssh-rsa-cert-v01@openssh.com rsa-sha2-256 rsa-sha2-256-cert-v01@openssh.com rsa-sha2-512 "
    "rsa-sha2-512-cert-v01@openssh.com"
)
ALL_SIGNATURE_ALGORITHMS = [name for name in ALL_KEY_ALGORITHMS if "-cert-" not in name]
# For a CA key type: the certificate algorithms the gateway's certificates use (any one is enough) and the
# signature algorithms the CA signs with.
CERT_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519-cert-v01@openssh.com",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256-cert-v01@openssh.com",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384-cert-v01@openssh.com",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521-cert-v01@openssh.com",),
    "ssh-rsa": (
        "rsa-sha2-512-cert-v01@openssh.com",
        "rsa-sha2-256-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ),
    "sk-ssh-ed25519@openssh.com": ("sk-ssh-ed25519-cert-v01@openssh.com",),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",),
}
SIGNATURE_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "sk-ssh-ed25519@openssh.com": ("sk-ssh-ed25519@openssh.com",),
    "sk-ecdsa-sha2-nistp256@openssh.com": (
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    ),
}
CRYPTO_POLICY_FILE = "/etc/crypto-policies/back-ends/opensshserver.config"
ROOT_LOGIN_ALLOWED = frozenset({"yes", "prohibit-password", "without-password", "forced-commands-only"})


APC_LAST_WINS = ((8, 7), (9, 4))
"""OpenSSH 8.7 to 9.3 check the wrong variable before setting AuthorizedPrincipalsCommand: 8.7's switch of
servconf.c to argv_split() made it share AuthorizedKeysCommand's parse_command, which tests
authorized_keys_command (bz3574, fixed in 9.4). So every active line overwrites the previous one until an
AuthorizedKeysCommand has been set in the same pass; after that, AuthorizedPrincipalsCommand lines are ignored.
Before 8.7 (8.4 proved on Debian 11) and from 9.4 on, the first value wins as for every other keyword."""


def apc_last_wins(version: tuple[int, int]) -> bool:
    """Does this OpenSSH (major, minor) have the bz3574 rule (see APC_LAST_WINS)?"""
    first, fixed = APC_LAST_WINS
    return first <= version < fixed
