from hypothesis import given
from hypothesis import strategies as st

from aislehub.ingest.subjects import decode_token, device_subject, encode_token


@given(st.text(max_size=40))
def test_a_token_decodes_to_its_id(value: str) -> None:
    token = encode_token(value)
    assert token
    assert not any(c in token for c in ".*> \t\r\n")
    assert decode_token(token) == value


@given(st.text(max_size=20), st.text(max_size=20))
def test_distinct_ids_get_distinct_tokens(a: str, b: str) -> None:
    if a != b:
        assert encode_token(a) != encode_token(b)


def test_subject_names_tenant_then_device_then_module() -> None:
    assert device_subject("shop-1", "cooler-7") == "shop-1.cooler-7"
    assert device_subject("shop-1", "a.b*", "m>") == "shop-1.a~2Eb~2A.m~3E"
    assert device_subject("shop-1", "ü") == "shop-1.~C3~BC"
