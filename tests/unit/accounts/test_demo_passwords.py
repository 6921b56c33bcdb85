"""accounts/demo_passwords.py: the demo accounts' hashes made beforehand are of their public passwords, and are used
only where the configured hasher would make such a hash."""

from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, get_hashers, get_hashers_by_algorithm

from accounts.demo_passwords import DEMO_PASSWORD_HASHES, demo_password_hash
from demo.crowd import CROWD, crowd_password

PBKDF2 = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def test_every_stored_hash_is_of_the_accounts_password():
    from accounts.management.commands.create_demo_users import DEMO_USERS

    passwords = {username: password for username, password, _role in DEMO_USERS}
    passwords |= {persona.username: crowd_password(persona.username) for persona in CROWD}
    assert set(DEMO_PASSWORD_HASHES) == set(passwords)
    hasher = PBKDF2PasswordHasher()
    # PBKDF2 frees the GIL: the eleven checks (~0.25 s each) run side by side.
    with ThreadPoolExecutor(4) as threads:
        right = list(threads.map(lambda u: hasher.verify(passwords[u], DEMO_PASSWORD_HASHES[u]), passwords))
    assert all(right)
    salts = {encoded.split("$")[2] for encoded in DEMO_PASSWORD_HASHES.values()}
    assert len(salts) == len(DEMO_PASSWORD_HASHES)  # a salt each


def _hashers(settings, names):
    settings.PASSWORD_HASHERS = names
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


def test_a_stored_hash_only_where_the_hasher_would_make_it(settings):
    try:
        _hashers(settings, PBKDF2)
        assert demo_password_hash("expert", "expert-demo") == DEMO_PASSWORD_HASHES["expert"]
        # Another password (a demo account created with one of its own) or an unknown account: hashed as usual.
        other = demo_password_hash("expert", "something-else")
        assert other != DEMO_PASSWORD_HASHES["expert"] and check_password("something-else", other)
        assert check_password("x-demo", demo_password_hash("x", "x-demo"))
        # More iterations configured (a Django upgrade): a fresh hash at the new count, not the stored one.
        settings.PASSWORD_HASHERS = ["tests.unit.accounts.test_demo_passwords.MoreIterations"]
        get_hashers.cache_clear()
        get_hashers_by_algorithm.cache_clear()
        fresh = demo_password_hash("expert", "expert-demo")
        assert fresh.split("$")[1] == str(MoreIterations.iterations) and fresh != DEMO_PASSWORD_HASHES["expert"]
    finally:
        _hashers(settings, ["django.contrib.auth.hashers.MD5PasswordHasher"])
    # The tests' fast hasher: not PBKDF2, so hashed by it.
    assert demo_password_hash("expert", "expert-demo").startswith("md5$")


class MoreIterations(PBKDF2PasswordHasher):
    iterations = PBKDF2PasswordHasher.iterations + 1
