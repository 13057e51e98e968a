"""MongoDB TLS as the URI sets it: malformed switches are configuration errors, and test-connection
says what connections get."""

from __future__ import annotations

import pytest

from passport_sync.config import mongo_tls_state, mongo_uri_problem
from passport_sync.service import _mongo_tls_check


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("mongodb://db.example/pp?tls=yes", "tls=yes is not true or false"),
        ("mongodb://db.example/pp?TLS=on", "tls=on is not true or false"),
        ("mongodb://u:p%40ss@db.example/pp?ssl=1", "ssl=1 is not true or false"),
        ("mongodb://db.example/pp?tlsAllowInvalidHostnames=ja", "tlsAllowInvalidHostnames=ja is not true or false"),
        ("mongodb://db.example/pp?tlsCAfle=/ca.pem", "unknown TLS option 'tlscafle'"),
    ],
)
def test_malformed_tls_options_are_named(uri: str, problem: str) -> None:
    found = mongo_uri_problem(uri)
    assert found is not None and problem in found
    assert "p%40ss" not in found


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://db.example/pp?tls=true",
        "mongodb://db.example/pp?tls=True&tlsCAFile=/etc/ca.pem",
        "mongodb://db.example/pp?ssl=false",
        "mongodb+srv://cluster.example/pp",
        "mongodb://u:p?ss@db.example/pp",
    ],
)
def test_well_formed_uris_pass(uri: str) -> None:
    assert mongo_uri_problem(uri) is None


def test_tls_state_follows_the_options_as_pymongo_reads_them() -> None:
    assert mongo_tls_state("mongodb://db.example/pp") == (False, False, False)
    assert mongo_tls_state("mongodb://db.example/pp?tls=true") == (True, True, True)
    assert mongo_tls_state("mongodb+srv://cluster.example/pp") == (True, True, True)
    assert mongo_tls_state("mongodb://db.example/pp?tlsCAFile=/ca.pem") == (True, True, True)  # implied
    assert mongo_tls_state("mongodb://db.example/pp?tls=true&tlsInsecure=true") == (True, False, False)
    assert mongo_tls_state("mongodb://db.example/pp?tls=true&tlsAllowInvalidHostnames=true") == (True, True, False)


def test_test_connection_line_warns_about_plaintext_over_a_network_and_unverified_certificates() -> None:
    remote = _mongo_tls_check("mongodb://db.example:27017/pp")
    assert remote["level"] == "warning" and remote["detail"] == "NOT encrypted: MONGODB_URI has no tls=true"
    assert "tls=true" in remote["hint"]
    local = _mongo_tls_check("mongodb://127.0.0.1:27017/pp")
    assert local["level"] == "ok" and local["detail"] == "NOT encrypted (MongoDB on this machine)"
    insecure = _mongo_tls_check("mongodb://db.example/pp?tls=true&tlsInsecure=true")
    assert insecure["level"] == "warning" and "NOT verified" in insecure["detail"]
    verified = _mongo_tls_check("mongodb://db.example/pp?tls=true&tlsCAFile=/etc/pp-ca.pem")
    assert verified["level"] == "ok"
    assert verified["detail"] == "encrypted; certificate verified against CA /etc/pp-ca.pem; host name checked"
