"""Fixtures shared by both test tiers live in tests/fixtures/ and are registered here."""

pytest_plugins = [
    "tests.fixtures.media",
    "tests.fixtures.databases",
    "tests.fixtures.speech",
    "tests.fixtures.s3",
]
