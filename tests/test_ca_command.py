"""``inspector ca``: run as a real subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certs import CertificateAuthority
from inspector.ca_command import main

ROOT = Path(__file__).resolve().parent.parent


def run_ca(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "inspector", "ca", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def _fingerprint_of(pem_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def test_first_run_creates_the_ca_and_prints_path_fingerprint_pem_and_steps(
    tmp_path: Path,
) -> None:
    confdir = tmp_path / "conf"
    result = run_ca("--confdir", str(confdir))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    pem_path = confdir / "ca.pem"
    out = result.stdout
    assert f"CA certificate: {pem_path}\n" in out
    assert f"SHA-256 fingerprint: {_fingerprint_of(pem_path)}\n" in out
    assert pem_path.read_text() in out
    assert (confdir / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert confdir.stat().st_mode & 0o777 == 0o700
    for step in (
        f"curl --cacert {pem_path}",
        f"SSL_CERT_FILE={pem_path}",
        f"REQUESTS_CA_BUNDLE={pem_path}",
        f"certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n http-inspector -i {pem_path}",
        f"cp {pem_path} /usr/local/share/ca-certificates/http-inspector.crt",
        "update-ca-certificates",
        "security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain "
        f"{pem_path}",
        str(confdir / "ca.crt"),
    ):
        assert step in out


def test_second_run_shows_the_same_ca(tmp_path: Path) -> None:
    first = run_ca("--confdir", str(tmp_path))
    second = run_ca("--confdir", str(tmp_path))
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


def test_printed_pem_is_the_ca_the_library_loads(tmp_path: Path) -> None:
    result = run_ca("--confdir", str(tmp_path))
    ca = CertificateAuthority.load_or_create(tmp_path)
    assert ca.cert_pem.decode() in result.stdout
    assert ca.fingerprint_sha256 in result.stdout


def test_paths_with_spaces_are_quoted_in_the_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    confdir = tmp_path / "my conf"
    assert main(confdir) == 0
    out = capsys.readouterr().out
    assert f"curl --cacert '{confdir / 'ca.pem'}' ..." in out


def test_world_readable_key_is_an_error_without_traceback(tmp_path: Path) -> None:
    assert run_ca("--confdir", str(tmp_path)).returncode == 0
    key = tmp_path / "ca-key.pem"
    key.chmod(0o644)
    result = run_ca("--confdir", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("inspector: error: ")
    assert f"chmod 600 {key}" in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_key_is_an_error_naming_the_file(tmp_path: Path) -> None:
    assert run_ca("--confdir", str(tmp_path)).returncode == 0
    key = tmp_path / "ca-key.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n")
    result = run_ca("--confdir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"inspector: error: CA key {key} is not a valid")
    assert "to create a new CA" in result.stderr
    assert "Traceback" not in result.stderr
    assert key.read_bytes() == b"-----BEGIN PRIVATE KEY-----\nnope\n"


def test_confdir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory")
    result = run_ca("--confdir", str(target))
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_parent_is_an_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = run_ca("--confdir", str(locked / "conf"))
    finally:
        locked.chmod(0o700)
    assert result.returncode == 2
    assert "cannot use the CA directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_confdir_below_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = run_ca("--confdir", str(tmp_path / "file" / "conf"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"inspector: error: {tmp_path / 'file'} is not a directory")
    assert "--confdir" in result.stderr
    assert "Traceback" not in result.stderr
