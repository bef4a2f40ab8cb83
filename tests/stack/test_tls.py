"""TLS material: CA, server pairs with the loopback SANs, combined PEM for haproxy."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from pytest_certload.errors import ConfigError
from pytest_certload.stack.tls import make_tls_material


def test_server_certificates_carry_given_and_loopback_names(tmp_path: Path) -> None:
    material = make_tls_material(tmp_path, server_names={"nginx": ["nginx-target", "10.0.0.7"]})
    cert_path, key_path = material.server_pair("nginx")
    leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["nginx-target", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(material.ca_key.stat().st_mode) == 0o600


def test_chain_verifies_against_the_ca_and_pairs_load(tmp_path: Path) -> None:
    material = make_tls_material(tmp_path, server_names={"a": [], "b": []})
    ca = x509.load_pem_x509_certificate(material.ca_cert.read_bytes())
    for name in ("a", "b"):
        cert, key = material.server_pair(name)
        leaf = x509.load_pem_x509_certificates(cert.read_bytes())[0]
        leaf.verify_directly_issued_by(ca)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        combined = material.combined_pem(name).read_text()
        assert combined.count("BEGIN CERTIFICATE") == 2
        assert "PRIVATE KEY" in combined
        server.load_cert_chain(material.combined_pem(name))


def test_unknown_service_name_is_a_clear_error(tmp_path: Path) -> None:
    material = make_tls_material(tmp_path, server_names={"nginx": []})
    with pytest.raises(
        ConfigError, match=r"no server certificate named 'apache'.*known names: nginx"
    ):
        material.server_pair("apache")


def test_bad_service_name_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid service name"):
        make_tls_material(tmp_path, server_names={"../evil": []})
