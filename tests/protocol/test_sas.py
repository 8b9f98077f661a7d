"""SAS tokens: byte-for-byte equal to the SDK's, and every refusal says why (contract §4)."""

# The SDK is untyped; calling into it is the point of these tests.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from azure.iot.device.common.auth.sastoken import RenewableSasToken
from azure.iot.device.common.auth.signing_mechanism import SymmetricKeySigningMechanism

from aislehub.errors import AuthenticationFailed
from aislehub.protocol import sas

KEY = base64.b64encode(b"k" * 32).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()
NOW = 1_700_000_000.0
SE = 1_700_003_600


def _hub_token(resource: str = "localhost/devices/cooler-1", key: str = KEY) -> sas.SasToken:
    return sas.parse_sas_token(sas.generate_sas_token(resource, key, SE))


@pytest.mark.parametrize("key_name", [None, "registration"])
def test_generate_matches_sdk(key_name: str | None) -> None:
    uri = "myhub.example.net/devices/cooler 1/modules/mod:1"
    sdk = RenewableSasToken(uri, SymmetricKeySigningMechanism(KEY), key_name=key_name or "")
    ours = sas.generate_sas_token(uri, KEY, sdk.expiry_time, key_name)
    assert ours == str(sdk)


def test_derive_device_key_is_hmac_of_registration_id() -> None:
    expected = hmac.new(base64.b64decode(KEY), b"cooler-1", hashlib.sha256).digest()
    assert sas.derive_device_key(KEY, "cooler-1") == base64.b64encode(expected).decode()


def test_parse_keeps_raw_sr_and_decodes_sig() -> None:
    token = _hub_token("localhost/devices/cooler-1")
    assert token.sr_raw == "localhost%2Fdevices%2Fcooler-1"
    assert token.resource == "localhost/devices/cooler-1"
    assert token.se == SE and token.skn is None
    assert base64.b64decode(token.sig, validate=True)


def test_parse_reads_skn() -> None:
    raw = sas.generate_sas_token("0ne00ABCDEF/registrations/r1", KEY, SE, "registration")
    assert sas.parse_sas_token(raw).skn == "registration"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("sr=a&sig=b&se=1", "does not start with"),
        ("SharedAccessSignature sig=b&se=1", "'sr'"),
        ("SharedAccessSignature sr=a&se=1", "'sig'"),
        ("SharedAccessSignature sr=a&sig=b", "'se'"),
        ("SharedAccessSignature sr=a&sig=b&se=", "'se'"),
        ("SharedAccessSignature sr=a&sig=b&se=12x", "not a Unix time"),
        ("SharedAccessSignature sr=a&sig=b&se=-5", "not a Unix time"),
        ("SharedAccessSignature sr=a&sig=b&se=1&junk", "without '='"),
        ("SharedAccessSignature sr=a&sr=a&sig=b&se=1", "repeats"),
    ],
)
def test_parse_refuses_malformed(raw: str, message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message):
        sas.parse_sas_token(raw)


def test_verify_accepts_primary_or_secondary() -> None:
    token = _hub_token(key=OTHER_KEY)
    sas.verify_sas_token(token, "LOCALHOST/devices/cooler-1", [KEY, OTHER_KEY], NOW)


def test_verify_refuses_bad_signature() -> None:
    with pytest.raises(AuthenticationFailed, match="signature"):
        sas.verify_sas_token(_hub_token(key=OTHER_KEY), "localhost/devices/cooler-1", [KEY], NOW)


def test_verify_refuses_no_keys() -> None:
    with pytest.raises(AuthenticationFailed, match="signature"):
        sas.verify_hub_token(_hub_token(), "cooler-1", None, [], NOW)


def test_verify_signs_the_raw_sr() -> None:
    # Same decoded resource, different encoding: the signature was over the other text.
    token = _hub_token()
    recoded = sas.SasToken("localhost/devices/cooler-1", token.sig, token.se)
    with pytest.raises(AuthenticationFailed, match="signature"):
        sas.verify_sas_signature(recoded, [KEY], NOW)


def test_verify_refuses_tampered_expiry() -> None:
    token = _hub_token()
    longer = sas.SasToken(token.sr_raw, token.sig, token.se + 1)
    with pytest.raises(AuthenticationFailed, match="signature"):
        sas.verify_sas_signature(longer, [KEY], NOW)


def test_verify_refuses_expired() -> None:
    with pytest.raises(AuthenticationFailed, match="expired"):
        sas.verify_sas_token(_hub_token(), "localhost/devices/cooler-1", [KEY], float(SE))


def test_verify_refuses_wrong_resource() -> None:
    with pytest.raises(AuthenticationFailed, match="expected"):
        sas.verify_sas_token(_hub_token(), "localhost/devices/cooler-2", [KEY], NOW)


@pytest.mark.parametrize(
    ("resource", "module_id"),
    [
        ("localhost/devices/cooler-1", None),
        ("myhub.example.net/devices/COOLER-1", None),
        ("10.0.0.5/devices/cooler-1/modules/mod1", "mod1"),
    ],
)
def test_hub_token_any_host(resource: str, module_id: str | None) -> None:
    sas.verify_hub_token(_hub_token(resource), "cooler-1", module_id, [KEY], NOW)


@pytest.mark.parametrize(
    ("resource", "module_id"),
    [
        ("localhost/devices/cooler-2", None),
        ("/devices/cooler-1", None),
        ("devices/cooler-1", None),
        ("localhost/devices/cooler-1/modules/mod1", None),
        ("localhost/devices/cooler-1", "mod1"),
        ("localhost/devices/cooler-1/modules/mod2", "mod1"),
        ("a/b/devices/cooler-1", None),
    ],
)
def test_hub_token_wrong_resource(resource: str, module_id: str | None) -> None:
    with pytest.raises(AuthenticationFailed, match="expected"):
        sas.verify_hub_token(_hub_token(resource), "cooler-1", module_id, [KEY], NOW)


def test_dps_token_with_group_derived_key() -> None:
    device_key = sas.derive_device_key(KEY, "cooler-1")
    raw = sas.generate_sas_token("0ne00ABCDEF/registrations/cooler-1", device_key, SE)
    token = sas.parse_sas_token(raw)
    sas.verify_dps_token(token, "0NE00abcdef", "cooler-1", [device_key], NOW)
    with pytest.raises(AuthenticationFailed, match="expected"):
        sas.verify_dps_token(token, "0ne00ABCDEF", "cooler-2", [device_key], NOW)
    with pytest.raises(AuthenticationFailed, match="signature"):
        sas.verify_dps_token(token, "0ne00ABCDEF", "cooler-1", [KEY], NOW)


def test_bad_stored_key_is_our_bug() -> None:
    with pytest.raises(ValueError, match="base64"):
        sas.verify_sas_signature(_hub_token(), ["not base64!"], NOW)
