"""The demo accounts' password hashes, made once and kept here: `make demo` creates eleven accounts (annotator,
expert, admin and the simulated crowd), and hashing each password with PBKDF2 at Django's 1 000 000 iterations is
~0.25 s of CPU, ~2.7 s in all on the critical path of the demo's start. The passwords are public (`annotator-demo`,
`crowd1-demo`, printed by `make demo` and in the README), so a stored hash of them reveals nothing more; each has
its own random salt. A hash is used only where it is what the configured hasher would make (same algorithm and
iterations): after a Django upgrade raises the iterations, or in the tests' fast hasher, the password is hashed
as usual. Made by `PBKDF2PasswordHasher().encode(password, get_random_string(22))`; tests verify every one."""

from __future__ import annotations

from django.contrib.auth.hashers import get_hasher, make_password

__all__ = ["DEMO_PASSWORD_HASHES", "demo_password_hash"]

DEMO_PASSWORD_HASHES: dict[str, str] = {
    "annotator": "pbkdf2_sha256$1000000$i0PcJppox2jTP8OE4oLHlg$MSqwWkcCzsK22nhlW46+jB7Am2n8KjSxJ4JoIhE7/dI=",
    "expert": "pbkdf2_sha256$1000000$eD24RrccOSKUDnqX1cn51b$qlLbWNK4aolN1eP1ptn2hZiK/40r0B9SokVgn/TW/XU=",
    "admin": "pbkdf2_sha256$1000000$LqVvv0bUENBhDvTXWCWBnz$yQZY4Nxbsagfe+HRCTYCMfJNar8ZGAI/dTCik7ga3Ew=",
    "crowd1": "pbkdf2_sha256$1000000$0YNH484E0YRp1W3c76PiUp$CE/RYFXAY9Xz0OIuC5deAE/fv9O18ddRNRjB0ZrwbiQ=",
    "crowd2": "pbkdf2_sha256$1000000$iLiEgdFkXWGES79hava3ad$2OnOhUD/9ZviQP8PzGQruq7tLDzWkXxbmR58WllWKvQ=",
    "crowd3": "pbkdf2_sha256$1000000$oTiSGhZc6bLBptgUxjPaSM$84SqUmNfg/QkAnzUiBZNaGY5GJGFZZP1c2kDPA3PlnQ=",
    "crowd4": "pbkdf2_sha256$1000000$QOjyL0ZdN1Igu7uNKpcxNO$OU6KdaaU7g3wRbMOCDL1tBN1kEkABrvl74dAFMlAm2U=",
    "crowd5": "pbkdf2_sha256$1000000$pysQUc1fC8AbEbGdHCOtLL$AKgDHinDVDU3mH18W1MJoFkvYDJBuYLxJxTMltKAuQ0=",
    "crowd6": "pbkdf2_sha256$1000000$8EwLzOkpHOMRluYm8vWOrz$hF5xfwiyGpLui7Y4dGScaNW0dpuPMdzJ2isaKiB098U=",
    "crowd7": "pbkdf2_sha256$1000000$H90NRsN8M5J47fvlEOOfPb$f5Uyqfak+tBggSlE+22ZU8QrRrRpBNn+Am5VTwr06gI=",
    "crowd8": "pbkdf2_sha256$1000000$Cb4VkHMHh4QfnQBEfOAEyb$ApqDbwhCWfJtyV7R2SkIteniZABFF3rE0rBcrKtS3nA=",
}


def demo_password_hash(username: str, password: str) -> str:
    """The stored hash of a demo account's password when the configured hasher would make one like it (and it is
    of this password), else a fresh `make_password`."""
    stored = DEMO_PASSWORD_HASHES.get(username)
    hasher = get_hasher()
    if stored is not None:
        algorithm, iterations, _salt, _hash = stored.split("$", 3)
        if (algorithm == hasher.algorithm and int(iterations) == getattr(hasher, "iterations", None)
                and password == _DEMO_PASSWORDS.get(username)):
            return stored
    return make_password(password)


# The passwords the hashes above are of (the demo's rule, `<username>-demo`); a stored hash is never handed out
# for any other password.
_DEMO_PASSWORDS = {username: f"{username}-demo" for username in DEMO_PASSWORD_HASHES}
