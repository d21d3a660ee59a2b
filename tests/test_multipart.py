"""chalicelib.multipart: byte-exact parts, the header forms real clients send, and only
MultipartError (never a crash) for any malformed body."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.multipart import MultipartError
from chalicelib.multipart import parse_multipart as parse
from tests.api_client import multipart_body

# What `curl -F file=@a.jpg -F name=x` sends (boundary and layout copied from curl 8).
CURL_BODY = (
    b"--------------------------d74496d66958873e\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n"
    b"\r\n"
    b"\xff\xd8\r\n--not-the-boundary\r\n\xff\xd9\r\n"
    b"--------------------------d74496d66958873e\r\n"
    b'Content-Disposition: form-data; name="name"\r\n'
    b"\r\n"
    b"x\r\n"
    b"--------------------------d74496d66958873e--\r\n"
)
CURL_BOUNDARY = "------------------------d74496d66958873e"


def test_curl_body_is_split_byte_exact():
    file_part, text_part = parse(CURL_BODY, CURL_BOUNDARY)
    assert (file_part.name, file_part.filename, file_part.content_type) == (
        "file",
        "a.jpg",
        "image/jpeg",
    )
    assert file_part.data == b"\xff\xd8\r\n--not-the-boundary\r\n\xff\xd9"
    assert file_part.is_file
    assert (text_part.name, text_part.filename, text_part.data) == ("name", None, b"x")
    assert not text_part.is_file


def test_preamble_epilogue_and_transport_padding_are_ignored():
    body, _ = multipart_body([("f", "a.bin", None, b"payload")], boundary="b")
    body = b"preamble\r\n" + body.replace(b"--b\r\n", b"--b  \r\n", 1) + b"epilogue"
    (part,) = parse(body, "b")
    assert part.data == b"payload"


def test_filenames_utf8_rfc2231_and_paths():
    body = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="a"; filename="v\xc3\xb6gel.jpg"\r\n\r\n1\r\n'
        b"--b\r\n"
        b"Content-Disposition: form-data; name=\"b\"; filename*=UTF-8''dr%C3%B6hne.png\r\n\r\n2\r\n"
        b"--b\r\n"
        b'Content-Disposition: form-data; name="c"; filename="C:\\\\Users\\\\me\\\\x.gif"\r\n\r\n3\r\n'
        b"--b\r\n"
        b'Content-Disposition: form-data; name="d"; filename="../../etc/passwd"\r\n\r\n4\r\n'
        b"--b--"
    )
    names = [p.filename for p in parse(body, "b")]
    assert names == ["vögel.jpg", "dröhne.png", "x.gif", "passwd"]


def test_lf_only_bodies_are_read_like_crlf_ones():
    """Bodies written by hand or by some scripts break lines with a bare LF."""
    lf = CURL_BODY.replace(b"\r\n", b"\n")
    crlf_parts, lf_parts = parse(CURL_BODY, CURL_BOUNDARY), parse(lf, CURL_BOUNDARY)
    assert [(p.name, p.filename, p.content_type) for p in lf_parts] == [
        (p.name, p.filename, p.content_type) for p in crlf_parts
    ]
    # The data keeps its own line breaks (rewritten here only because the whole body was).
    assert lf_parts[0].data == crlf_parts[0].data.replace(b"\r\n", b"\n")
    assert lf_parts[1].data == b"x"
    with_preamble = b"preamble\n" + lf
    assert [p.data for p in parse(with_preamble, CURL_BOUNDARY)] == [p.data for p in lf_parts]


def test_lf_only_truncated_bodies_are_still_called_truncated():
    lf = CURL_BODY.replace(b"\r\n", b"\n")
    with pytest.raises(MultipartError, match="closing boundary is missing"):
        parse(lf[: len(lf) // 2], CURL_BOUNDARY)


def test_part_without_headers_and_empty_parts():
    body = b"--b\r\n\r\nraw\r\n--b\r\nContent-Disposition: form-data; name=e\r\n\r\n\r\n--b--\r\n"
    first, second = parse(body, "b")
    assert (first.name, first.data) == (None, b"raw")
    assert (second.name, second.data) == ("e", b"")


@pytest.mark.parametrize(
    ("body", "boundary", "fragment"),
    [
        (b"--b\r\n\r\nx\r\n--b--", None, "no boundary"),
        (b"--b\r\n\r\nx\r\n--b--", "b" * 71, "longer than 70"),
        (b"--b\r\n\r\nx\r\n--b--", "bé", "ASCII"),
        (b"nothing here", "b", "does not contain its boundary"),
        (b"--b", "b", "truncated"),
        (b"--b\r\n\r\nx", "b", "closing boundary is missing"),
        (b"--bxyz\r\n\r\nx\r\n--b--", "b", "unexpected characters"),
        (b"--b\r\nContent-Disposition: form-data\r\nx\r\n--b--", "b", "header block"),
    ],
)
def test_malformed_bodies_raise_multipart_error(body: bytes, boundary: str | None, fragment: str):
    with pytest.raises(MultipartError) as caught:
        parse(body, boundary)
    assert fragment in caught.value.message


def test_part_count_is_limited():
    body, _ = multipart_body([("f", f"{i}", None, b"x") for i in range(5)], boundary="b")
    assert len(parse(body, "b", max_parts=5)) == 5
    with pytest.raises(MultipartError, match="more than 4 parts"):
        parse(body, "b", max_parts=4)


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_round_trip_of_arbitrary_binary_payloads(payloads: list[bytes]):
    boundary = "skyclass-0123456789abcdef"
    parts = [("f", f"{i}.bin", "application/octet-stream", p) for i, p in enumerate(payloads)]
    body, _ = multipart_body(parts, boundary=boundary)
    parsed = parse(body, boundary)
    assert [p.data for p in parsed] == payloads
    assert [p.filename for p in parsed] == [f"{i}.bin" for i in range(len(payloads))]


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.sampled_from(
                [
                    b"--b",
                    b"\r\n",
                    b"\n",
                    b"--",
                    b"Content-Disposition: form-data; name=",
                    b'"',
                    b"x",
                ]
            ),
            max_size=30,
        ).map(b"".join),
    )
)
def test_any_body_either_parses_or_raises_multipart_error(body: bytes):
    try:
        parse(body, "b")
    except MultipartError as exc:
        assert exc.message
