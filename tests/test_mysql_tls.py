"""TLS to MySQL, end to end: a second MariaDB started by this module with certificates it made.

The module makes a CA, a server certificate for ``localhost`` (DNS name only), a client
certificate, and a foreign CA, with ``openssl``; starts ``mariadbd`` on a free port with its own
datadir and ``--ssl-ca/--ssl-cert/--ssl-key``; and creates a user that ``REQUIRE SSL`` and one
that ``REQUIRE X509``. The server is stopped when the module ends, whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
from typer.testing import CliRunner

from passport_sync.cli import app
from passport_sync.synthetic.builder import OpenMRSBuilder, load_openmrs_schema
from passport_sync.synthetic.processes import stop
from tests.conftest import register_patient
from tests.helpers import write_config

NID = "1199780012345678"
DATABASE = "openmrs_tls"
runner = CliRunner()


@dataclass
class TLSServer:
    port: int
    certs: Path
    password: str


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(name: str, cwd: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} Test CA",
        "-keyout", f"{name}-ca-key.pem", "-out", f"{name}-ca.pem", cwd=cwd,
    )  # fmt: skip


def _sign(name: str, subject: str, extension: str, ca: str, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(extension + "\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={subject}",
        "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=cwd,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}-ca.pem", "-CAkey", f"{ca}-ca-key.pem",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=cwd,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(sock: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("mariadbd exited: " + log.read_text(errors="replace")[-2000:])
        try:
            pymysql.connect(unix_socket=str(sock), user="root").close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("mariadbd did not start within 30 s: " + log.read_text(errors="replace")[-2000:])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    for tool in ("mariadbd", "mariadb-install-db", "openssl"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    # Unix socket paths are limited to about 100 bytes: a short base directory.
    base = Path(os.path.realpath(tmp_path_factory.mktemp("tls")))
    certs = base / "certs"
    certs.mkdir()
    _make_ca("hospital", certs)
    _make_ca("foreign", certs)
    # DNS name only: connecting to 127.0.0.1 is a host name mismatch.
    _sign("server", "localhost", "subjectAltName=DNS:localhost", "hospital", certs)
    _sign("client", "passport-sync", "extendedKeyUsage=clientAuth", "hospital", certs)
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={base / 'data'}",
         "--auth-root-authentication-method=normal", "--skip-test-db", *as_root],
        check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    sock = base / "mysqld.sock"
    log = base / "error.log"
    process = subprocess.Popen(
        ["mariadbd", "--no-defaults", *as_root, f"--datadir={base / 'data'}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={base / 'mysqld.pid'}",
         f"--ssl-ca={certs / 'hospital-ca.pem'}", f"--ssl-cert={certs / 'server.pem'}",
         f"--ssl-key={certs / 'server-key.pem'}", "--skip-log-bin", "--innodb-buffer-pool-size=16M",
         f"--log-error={log}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(sock, process, log)
        password = secrets.token_urlsafe(12)
        admin = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True, charset="utf8mb4")
        load_openmrs_schema(admin, DATABASE)
        with admin.cursor() as cursor:
            for user, requirement in (("tls_user", "SSL"), ("x509_user", "X509")):
                cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s REQUIRE {requirement}", (password,))
                cursor.execute(f"GRANT SELECT ON `{DATABASE}`.* TO '{user}'@'%'")
        admin.select_db(DATABASE)
        builder = OpenMRSBuilder(admin)
        concept = builder.concept("Weight (kg)", datatype="Numeric", concept_class="Test", units="kg")
        builder.obs(builder.patient(national_id=NID), concept, value_numeric=61)
        admin.close()
        yield TLSServer(port=port, certs=certs, password=password)
    finally:
        stop(process, timeout=20)


def _config(
    tmp_path: Path, server: TLSServer, mongo_uri: str, mongo_db: str, *, host: str = "localhost", **db: Any
) -> Path:
    entry = {
        "id": "central",
        "name": "Central Hospital",
        "db": {"host": host, "port": server.port, "name": DATABASE, "user": "tls_user", "password": server.password}
        | db,
    }
    return write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db, [entry])


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={})


def test_the_right_ca_syncs_over_verified_tls(
    tls_server: TLSServer, tmp_path: Path, mongo_uri: str, mongo_db_name: str, passport: Any
) -> None:
    register_patient(passport, NID)
    ca = str(tls_server.certs / "hospital-ca.pem")
    config = _config(tmp_path, tls_server, mongo_uri, mongo_db_name, tls="required", ssl={"ca": ca})
    result = _invoke("sync-all", "--config", str(config), "--json", "--verbose")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["hospitals"][0]["written"] == 1
    assert passport.medicalrecords.count_documents({}) == 1
    assert "Central Hospital: connected to localhost" in result.stderr and "TLSv1." in result.stderr

    checked = _invoke("test-connection", "--config", str(config), "--json")
    checks = {c["check"]: c for c in json.loads(checked.stdout)["results"][0]["checks"]}
    assert checks["TLS"]["level"] == "ok"
    assert checks["TLS"]["detail"] == f"encrypted; certificate verified against CA {ca}; host name checked"


def test_a_foreign_ca_is_refused_naming_the_certificate_problem(
    tls_server: TLSServer, tmp_path: Path, mongo_uri: str, mongo_db_name: str, passport: Any
) -> None:
    foreign = str(tls_server.certs / "foreign-ca.pem")
    config = _config(tmp_path, tls_server, mongo_uri, mongo_db_name, ssl={"ca": foreign})
    result = _invoke("test-connection", "--config", str(config))
    assert result.exit_code == 1
    # MariaDB sends its CA along with its certificate, so OpenSSL names the chain's root.
    assert (
        "TLS: the server's certificate was refused: self-signed certificate in certificate chain "
        "(certificate verify failed)" in result.stdout
    )
    assert f"signed by the CA in db.ssl.ca ({foreign})" in result.stdout
    synced = _invoke("sync-all", "--config", str(config), "--json")
    assert synced.exit_code == 1
    assert "certificate verify failed" in json.loads(synced.stdout)["hospitals"][0]["errors"][0]
    assert passport.medicalrecords.count_documents({}) == 0


def test_the_host_name_is_checked_unless_verify_identity_is_false(
    tls_server: TLSServer, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    ca = str(tls_server.certs / "hospital-ca.pem")
    config = _config(tmp_path, tls_server, mongo_uri, mongo_db_name, host="127.0.0.1", ssl={"ca": ca})
    refused = _invoke("test-connection", "--config", str(config))
    assert refused.exit_code == 1
    assert "IP address mismatch" in refused.stdout and "verify_identity: false" in refused.stdout

    config = _config(
        tmp_path, tls_server, mongo_uri, mongo_db_name, host="127.0.0.1", ssl={"ca": ca, "verify_identity": False}
    )
    accepted = _invoke("test-connection", "--config", str(config), "--json")
    checks = {c["check"]: c for c in json.loads(accepted.stdout)["results"][0]["checks"]}
    assert checks["connect"]["ok"], checks["connect"]
    assert "host name NOT checked (verify_identity: false)" in checks["TLS"]["detail"]


def test_the_client_certificate_is_sent(
    tls_server: TLSServer, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    certs = tls_server.certs
    ca = str(certs / "hospital-ca.pem")
    without = _config(tmp_path, tls_server, mongo_uri, mongo_db_name, user="x509_user", ssl={"ca": ca})
    refused = _invoke("test-connection", "--config", str(without))
    assert refused.exit_code == 1 and "Access denied for user 'x509_user'" in refused.stdout

    tls = {"ca": ca, "cert": str(certs / "client.pem"), "key": str(certs / "client-key.pem")}
    with_cert = _config(tmp_path, tls_server, mongo_uri, mongo_db_name, user="x509_user", ssl=tls)
    accepted = _invoke("test-connection", "--config", str(with_cert), "--json")
    checks = {c["check"]: c for c in json.loads(accepted.stdout)["results"][0]["checks"]}
    assert checks["connect"]["ok"], checks["connect"]
    assert checks["TLS"]["detail"].endswith("; client certificate sent")


def test_preferred_without_ssl_encrypts_and_warns_that_nothing_is_verified(
    tls_server: TLSServer, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    config = _config(tmp_path, tls_server, mongo_uri, mongo_db_name)  # no tls, no ssl: preferred
    result = _invoke("test-connection", "--config", str(config), "--json")
    checks = {c["check"]: c for c in json.loads(result.stdout)["results"][0]["checks"]}
    assert checks["connect"]["ok"], checks["connect"]  # the REQUIRE SSL user got TLS
    assert checks["TLS"]["level"] == "warning"
    assert checks["TLS"]["detail"] == "encrypted, but the server's certificate is NOT verified (tls: preferred)"

    disabled = _config(tmp_path, tls_server, mongo_uri, mongo_db_name, tls="disabled")
    refused = _invoke("test-connection", "--config", str(disabled))
    assert refused.exit_code == 1 and "Access denied for user 'tls_user'" in refused.stdout
