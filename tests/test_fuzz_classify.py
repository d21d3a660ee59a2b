"""Fuzzing POST /classify through the Lambda handler, one hypothesis strategy per kind of abuse.

Every case goes through ``app(event, None)`` with an API Gateway proxy event, a real Pillow decode
and a real onnxruntime session, and must pass :func:`check_reply`: a result, a batch of results
and per-file errors, or a JSON client error, under 2 s, with no internals in the body (a client's
own values quoted back are told apart from leaks). Each test reports how many cases it ran, the
statuses seen, the slowest response and its seed.

``SKYCLASS_FUZZ_EXAMPLES`` sets the cases per strategy (300; CI 100): with the 14 strategies here,
``SKYCLASS_FUZZ_EXAMPLES=1000`` runs 14,000 cases. ``SKYCLASS_FUZZ_SEED`` fixes the seed (CI sets
one, so a red run replays exactly); without it each run draws a new seed and reports it, so any
run can be replayed with ``SKYCLASS_FUZZ_SEED=<seed>`` (failures also print hypothesis's
``@reproduce_failure`` blob, and the local ``.hypothesis/`` database replays them first).
"""

import base64
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from chalicelib import limits, media_types
from shared import DEFAULT_LABELS
from tests.api_client import multipart_body
from tests.imagegen import encode, synthetic_rgb
from tests.robust_support import Reply, check_reply, classify, env_count, leaks, pack, report
from tests.robust_support import served_model as served_model

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("served_model")]

EXAMPLES = env_count("SKYCLASS_FUZZ_EXAMPLES", 300)
SEED = env_count("SKYCLASS_FUZZ_SEED", random.SystemRandom().randrange(2**32))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the 2 s bound is checked per request by check_reply, not per example
    derandomize=False,  # the seed below decides, in CI too (hypothesis derandomizes on CI)
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Small seeds keep the cases that still decode cheap; the formats the API accepts.
SEEDS = {
    "JPEG": encode(synthetic_rgb(48, 40, seed=11), "JPEG", quality=85),
    "PNG": encode(synthetic_rgb(48, 40, seed=12), "PNG"),
    "GIF": encode(synthetic_rgb(48, 40, seed=13), "GIF"),
    "WEBP": encode(synthetic_rgb(48, 40, seed=14), "WEBP", quality=80),
}
IMAGE_TYPE = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

# API Gateway events are JSON, so header values are text without lone surrogates.
header_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
accepted_types = st.sampled_from([*media_types.RAW_TYPES, media_types.MULTIPART, media_types.JSON])
content_types = st.one_of(accepted_types, st.sampled_from(["text/plain", ""]), header_text)


@dataclass
class Tally:
    """What one strategy ran: the count per status and the slowest response."""

    name: str
    statuses: Counter[int] = field(default_factory=Counter)
    slowest: float = 0.0
    # Files inside batches: how many got a result and how many their own error.
    files: Counter[str] = field(default_factory=Counter)

    def check(self, reply: Reply, sent: bytes | str) -> Reply:
        self.statuses[reply.status] += 1
        self.slowest = max(self.slowest, reply.seconds)
        check_reply(reply, sent)
        results = reply.payload.get("results") if reply.status == 200 else None
        entries = results.values() if isinstance(results, dict) else results or []
        for entry in entries:
            self.files["error" if "error" in entry else "result"] += 1
        return reply

    def summary(self) -> str:
        shown = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        total = sum(self.statuses.values())
        files = f"; batch files {dict(self.files)}" if self.files else ""
        return (
            f"fuzz {self.name}: {total} cases ({shown}){files}; slowest "
            f"{self.slowest * 1000:.0f} ms; SKYCLASS_FUZZ_SEED={SEED}"
        )


def run(request: pytest.FixtureRequest, name: str, case: Callable[[Tally], None]) -> Tally:
    """Run a hypothesis ``case(tally)`` and report its figures, also when it fails."""
    tally = Tally(name)
    try:
        seed(SEED)(case)(tally)
    finally:
        report(request, tally.summary())
    return tally


@st.composite
def mutated_images(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid seed image with one to three truncations, bit flips, header scribbles or splices."""
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        kind = draw(st.sampled_from(["truncate", "flip", "header", "splice"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "header":  # the signature, IHDR/SOF/VP8 fields: where parsers trust sizes
            start = draw(st.integers(0, min(len(data), 64) - 1))
            junk = draw(st.binary(min_size=1, max_size=16))
            data[start : start + len(junk)] = junk
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return fmt, bytes(data)


def test_fuzz_random_bytes(request: pytest.FixtureRequest):
    @FUZZ
    @given(body=st.binary(max_size=4096), content_type=content_types)
    def case(tally: Tally, body: bytes, content_type: str) -> None:
        tally.check(classify(body, content_type), body)

    run(request, "random bytes", case)


def test_fuzz_random_headers_and_queries(request: pytest.FixtureRequest):
    """Any Content-Type, any query string, any extra header: what is quoted back is cut short
    and is the client's own, never a leak (a Content-Type ".PY" once read as a leaked file)."""

    @FUZZ
    @given(
        body=st.sampled_from([b"", SEEDS["PNG"], b"not an image"]),
        content_type=st.one_of(content_types, header_text.map(str.upper)),
        top=st.one_of(st.none(), header_text, st.integers().map(str)),
        extra=st.dictionaries(st.sampled_from(["X-Trace", "User-Agent", "Accept"]), header_text),
    )
    def case(tally: Tally, body: bytes, content_type: str, top: str | None, extra: dict) -> None:
        reply = tally.check(
            classify(
                body, content_type, query=None if top is None else {"top": top}, headers=extra
            ),
            body,
        )
        if reply.status != 200:
            assert len(reply.payload["message"]) < 900, reply.payload

    run(request, "random headers and queries", case)


def test_fuzz_mutated_images(request: pytest.FixtureRequest):
    @FUZZ
    @given(image=mutated_images(), form=st.sampled_from(["raw", "multipart", "json"]))
    def case(tally: Tally, image: tuple[str, bytes], form: str) -> None:
        fmt, data = image
        body, content_type = pack(form, data, IMAGE_TYPE[fmt])
        tally.check(classify(body, content_type), body)

    tally = run(request, "mutated JPEG/PNG/GIF/WebP", case)
    # Not all mutations destroy an image (a flipped bit in pixel data still decodes): the
    # strategy must reach both the decoder's refusals and the model.
    assert tally.statuses[200] and tally.statuses[400], tally.statuses


def test_fuzz_wrong_content_types(request: pytest.FixtureRequest):
    @FUZZ
    @given(fmt=st.sampled_from(sorted(SEEDS)), content_type=content_types)
    def case(tally: Tally, fmt: str, content_type: str) -> None:
        reply = tally.check(classify(SEEDS[fmt], content_type), SEEDS[fmt])
        media_type, _ = media_types.parse_content_type(content_type)
        if media_type in media_types.RAW_TYPES:  # the type only says how the body is packed
            assert reply.status == 200, reply.payload
        elif media_type not in (media_types.MULTIPART, media_types.JSON):
            assert reply.status == 415, reply.payload

    run(request, "wrong content types", case)


boundaries = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=0, max_size=90)


def test_fuzz_multipart_boundaries(request: pytest.FixtureRequest):
    """A well-formed body whose header boundary is missing, different, empty, too long, non-ASCII
    or quoted oddly, or whose delimiter lines are damaged."""
    good = "----fuzzBoundary"
    body, _ = multipart_body([("file", "a.png", "image/png", SEEDS["PNG"])], boundary=good)

    @FUZZ
    @given(
        header=st.one_of(
            st.just(f"{media_types.MULTIPART}; boundary={good}"),  # right header, damaged body
            st.just(media_types.MULTIPART),
            boundaries.map(lambda b: f"{media_types.MULTIPART}; boundary={b}"),
            boundaries.map(lambda b: f'{media_types.MULTIPART}; boundary="{b}"'),
            header_text.map(lambda text: f"{media_types.MULTIPART}; {text}"),
        ),
        damage=st.lists(
            st.tuples(st.integers(0, len(body) - 1), st.binary(max_size=4)), max_size=3
        ),
    )
    def case(tally: Tally, header: str, damage: list[tuple[int, bytes]]) -> None:
        sent = bytearray(body)
        for at, junk in damage:  # overwrite, usually inside a delimiter or the part's headers
            sent[at : at + len(junk)] = junk
        reply = tally.check(classify(bytes(sent), header), bytes(sent))
        if not damage and good not in header:
            assert reply.status == 400, reply.payload

    tally = run(request, "multipart boundaries", case)
    assert tally.statuses[200] and tally.statuses[400], tally.statuses


def test_fuzz_thousands_of_parts(request: pytest.FixtureRequest):
    """Far more parts than allowed, of every kind, are refused before any image is decoded."""
    kinds = {
        "text": ("note", None, None, b"hello"),
        "file": ("file", "x.png", "image/png", encode(synthetic_rgb(8, 8), "PNG")),
        "junk": ("file", "y.jpg", "image/jpeg", b"\xff\xd8junk"),
        "bare": ("", None, "application/octet-stream", b""),
    }

    @FUZZ
    @given(
        count=st.integers(limits.MAX_PARTS + 1, 5000),
        mix=st.lists(st.sampled_from(sorted(kinds)), min_size=1, max_size=4),
    )
    def case(tally: Tally, count: int, mix: list[str]) -> None:
        body, content_type = multipart_body([kinds[mix[i % len(mix)]] for i in range(count)])
        reply = tally.check(classify(body, content_type), body)
        expected = 413 if len(body) > limits.MAX_BODY_BYTES else 400
        assert reply.status == expected, (count, reply.payload)

    run(request, "thousands of parts", case)


def test_fuzz_non_utf8_filenames(request: pytest.FixtureRequest):
    """Raw filename bytes (invalid UTF-8, controls, separators, quotes) with a valid image: the
    name is only ever a key, reduced to its last path component and printable characters."""

    @FUZZ
    @given(filename=st.binary(max_size=300), fmt=st.sampled_from(sorted(SEEDS)))
    def case(tally: Tally, filename: bytes, fmt: str) -> None:
        boundary = "fuzzNames"
        body = (
            f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="file"; filename="'
            + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + SEEDS[fmt]
            + f"\r\n--{boundary}--\r\n".encode()
        )
        reply = tally.check(classify(body, f"{media_types.MULTIPART}; boundary={boundary}"), body)
        if reply.status == 200 and "results" in reply.payload:
            for key in reply.payload["results"]:
                _, _, name = key.partition("/")
                assert "/" not in name and "\\" not in name and name.isprintable(), key

    tally = run(request, "non-UTF-8 filenames", case)
    assert tally.statuses[200], tally.statuses


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | header_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(header_text, inner, max_size=4),
    max_leaves=10,
)


def test_fuzz_base64_garbage_in_json(request: pytest.FixtureRequest):
    base64ish = st.text(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n"),
        max_size=400,
    )

    @FUZZ
    @given(
        image=st.one_of(
            base64ish,
            base64ish.map(lambda text: "data:image/png;base64," + text),
            header_text.map(lambda text: "data:" + text),
            mutated_images().map(lambda image: base64.b64encode(image[1]).decode()),
            json_values,
        ),
        extra=st.dictionaries(header_text, json_values, max_size=3),
        as_text=st.booleans(),
    )
    def case(tally: Tally, image: object, extra: dict[str, object], as_text: bool) -> None:
        text = json.dumps({**extra, "image": image})
        body: bytes | str = text if as_text else text.encode()
        tally.check(classify(body, media_types.JSON), text)

    tally = run(request, "base64 garbage in JSON", case)
    assert tally.statuses[400], tally.statuses


# --- batches, base64 variants, top, LF multipart, EXIF ------------------------------------------


@st.composite
def base64_variants(draw: st.DrawFn, data: bytes) -> str:
    """``data`` in base64 as real encoders write it: either alphabet, padded or not, wrapped or
    spaced, maybe as a data: URL (any letter case in its prefix)."""
    text = base64.b64encode(data).decode()
    if draw(st.booleans()):
        text = text.translate(str.maketrans("+/", "-_"))
    if draw(st.booleans()):
        text = text.rstrip("=")
    width = draw(st.sampled_from([0, 60, 64, 76]))
    if width:
        separator = draw(st.sampled_from(["\n", "\r\n", " ", "\t", "\n  "]))
        text = separator.join(text[i : i + width] for i in range(0, len(text), width))
    if draw(st.booleans()):
        prefix = draw(st.sampled_from(["data:image/png;base64,", "DATA:image/jpeg;BASE64,"]))
        text = prefix + text
    return draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", "\n"]))


def test_fuzz_base64_variants_of_valid_images(request: pytest.FixtureRequest):
    raw = {fmt: classify(data, IMAGE_TYPE[fmt]).payload for fmt, data in SEEDS.items()}

    @FUZZ
    @given(data=st.data(), fmt=st.sampled_from(sorted(SEEDS)))
    def case(tally: Tally, data: st.DataObject, fmt: str) -> None:
        text = json.dumps({"image": data.draw(base64_variants(SEEDS[fmt]))})
        reply = tally.check(classify(text, media_types.JSON), text)
        assert reply.status == 200, reply.payload
        assert reply.payload["probabilities"] == raw[fmt]["probabilities"]

    run(request, "base64 variants of valid images", case)


batch_entries = st.one_of(
    st.sampled_from(sorted(SEEDS)).flatmap(lambda fmt: base64_variants(SEEDS[fmt])),
    mutated_images().map(lambda image: base64.b64encode(image[1]).decode()),
    st.sampled_from(["https://example.org/a.jpg", "file:///etc/passwd", "%%%", "", "QUJDR"]),
    json_values,
)


def test_fuzz_json_batches(request: pytest.FixtureRequest):
    """Lists and objects of entries of every kind: the batch is answered per entry; too many
    entries are refused whole."""

    @FUZZ
    @given(
        entries=st.lists(batch_entries, min_size=1, max_size=limits.MAX_FILES + 2),
        as_object=st.booleans(),
        names=st.lists(header_text, min_size=limits.MAX_FILES + 2, max_size=limits.MAX_FILES + 2),
    )
    def case(tally: Tally, entries: list[object], as_object: bool, names: list[str]) -> None:
        images = dict(zip(names, entries, strict=False)) if as_object else entries
        text = json.dumps({"images": images})
        reply = tally.check(classify(text, media_types.JSON), text)
        if len(images) > limits.MAX_FILES:
            assert reply.status == 413, reply.payload
        else:
            assert reply.status == 200, reply.payload
            assert reply.payload["count"] == len(images)
            assert isinstance(reply.payload["results"], dict) == as_object

    tally = run(request, "JSON batches", case)
    assert tally.files["result"] and tally.files["error"], tally.files


_TOP_OK = re.compile(r"[0-9]+")


def test_fuzz_top_everywhere(request: pytest.FixtureRequest):
    """``top`` in the query, a multipart field or JSON: any run of ASCII digits from 1 up is
    honoured (above the label count, however long, it means every label), an empty or absent one
    means every label, anything else is a 400."""
    values = st.one_of(
        st.none(),
        header_text,
        st.integers(-3, 12).map(str),
        st.sampled_from(["２", "٢", "+2", " 2", "2 ", "0x2", "1e1", "00003", "000", "9" * 7]),
        st.integers(0, 9).map(lambda digit: str(digit) * 5000),
    )

    @FUZZ
    @given(value=values, where=st.sampled_from(["query", "field", "json"]), json_int=st.booleans())
    def case(tally: Tally, value: str | None, where: str, json_int: bool) -> None:
        query = None
        if where == "query":
            body, content_type = SEEDS["PNG"], "image/png"
            query = None if value is None else {"top": value}
        elif where == "field":
            fields = [] if value is None else [("top", None, None, value.encode())]
            body, content_type = multipart_body(
                [("file", "a.png", "image/png", SEEDS["PNG"]), *fields]
            )
        else:
            document: dict[str, object] = {"image": base64.b64encode(SEEDS["PNG"]).decode()}
            sent: object = value
            if json_int and value is not None and re.fullmatch(r"-?[0-9]{1,100}", value):
                sent = int(value)
            document["top"] = sent
            body, content_type = json.dumps(document), media_types.JSON
        reply = tally.check(classify(body, content_type, query=query), body)
        if value is None or value == "":
            assert reply.status == 200 and len(reply.payload["top"]) == len(DEFAULT_LABELS)
        elif _TOP_OK.fullmatch(value) and value.strip("0"):
            significant = value.lstrip("0")  # more digits than int() takes: every label
            count = int(significant) if len(significant) < 4 else len(DEFAULT_LABELS)
            assert reply.status == 200, reply.payload
            assert len(reply.payload["top"]) == min(count, len(DEFAULT_LABELS))
        else:
            assert reply.status == 400 and reply.payload["error"] == "invalid_parameter"

    run(request, "top everywhere", case)


_REJECT_OK = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def test_fuzz_reject_everywhere(
    request: pytest.FixtureRequest, rejecting_model, monkeypatch: pytest.MonkeyPatch
):
    """``reject`` in the query, a multipart field or JSON, served by a model that finds every
    image unknown: true/false, 1/0, yes/no in any case (JSON booleans and 0/1 too) decide the
    label, an empty or absent one means rejection on, anything else is a 400."""
    monkeypatch.setenv("SKYCLASS_MODEL_PATH", str(rejecting_model))
    values = st.one_of(
        st.none(),
        header_text,
        st.sampled_from(sorted(_REJECT_OK)).flatmap(
            lambda word: st.sampled_from(
                [word, word.upper(), word.title(), f" {word}", word + "\t"]
            )
        ),
        st.sampled_from(["on", "off", "2", "-1", "tru", "ｔｒｕｅ", "１", "TRUE\u0000"]),
    )
    json_values = st.one_of(values, st.booleans(), st.integers(-2, 3), st.floats(allow_nan=False))

    @FUZZ
    @given(value=values, json_value=json_values, where=st.sampled_from(["query", "field", "json"]))
    def case(tally: Tally, value: str | None, json_value: object, where: str) -> None:
        query, sent = None, value
        if where == "query":
            body, content_type = SEEDS["PNG"], "image/png"
            query = None if value is None else {"reject": value}
        elif where == "field":
            fields = [] if value is None else [("reject", None, None, value.encode())]
            body, content_type = multipart_body(
                [("file", "a.png", "image/png", SEEDS["PNG"]), *fields]
            )
        else:
            sent = json_value
            document = {"image": base64.b64encode(SEEDS["PNG"]).decode(), "reject": sent}
            body, content_type = json.dumps(document), media_types.JSON
        reply = tally.check(classify(body, content_type, query=query), body)
        if isinstance(sent, bool) or (isinstance(sent, int) and sent in (0, 1)):
            expected: bool | None = bool(sent)
        elif sent is None or sent == "":
            expected = True
        elif isinstance(sent, str):
            expected = _REJECT_OK.get(sent.lower())
        else:
            expected = None
        if expected is None:
            assert reply.status == 400 and reply.payload["error"] == "invalid_parameter"
            assert "reject" in reply.payload["message"]
        else:
            assert reply.status == 200, reply.payload
            assert reply.payload["known"] is False
            closest = reply.payload["closest"]
            assert reply.payload["label"] == ("unknown" if expected else closest)

    run(request, "reject everywhere", case)


def test_fuzz_multipart_line_endings_and_padding(request: pytest.FixtureRequest):
    """Well-formed bodies with CRLF or bare-LF line breaks, transport padding, a preamble and an
    epilogue, text fields among the files: every file is found and answered."""

    @FUZZ
    @given(
        newline=st.sampled_from([b"\r\n", b"\n"]),
        padding=st.sampled_from([b"", b" ", b"\t ", b"   "]),
        preamble=st.sampled_from([b"", b"This is a multi-part message.", b"\x00junk"]),
        epilogue=st.binary(max_size=20),
        files=st.lists(st.sampled_from(sorted(SEEDS)), min_size=1, max_size=4),
        fields=st.lists(
            st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=8),
            max_size=3,
        ),
    )
    def case(
        tally: Tally,
        newline: bytes,
        padding: bytes,
        preamble: bytes,
        epilogue: bytes,
        files: list[str],
        fields: list[str],
    ) -> None:
        boundary = b"fuzzLines"
        parts = [(b'form-data; name="note"', b"", value.encode()) for value in fields] + [
            (
                b'form-data; name="file"; filename="' + f"{i}.img".encode() + b'"',
                b"Content-Type: application/octet-stream" + newline,
                SEEDS[fmt],
            )
            for i, fmt in enumerate(files)
        ]
        body = (preamble + newline) if preamble else b""
        for disposition, extra, data in parts:
            body += b"--" + boundary + padding + newline
            body += (
                b"Content-Disposition: " + disposition + newline + extra + newline + data + newline
            )
        body += b"--" + boundary + b"--" + newline + epilogue
        reply = tally.check(classify(body, "multipart/form-data; boundary=fuzzLines"), body)
        assert reply.status == 200, reply.payload
        if len(files) > 1:
            assert reply.payload["count"] == len(files) and reply.payload["failed"] == 0

    run(request, "multipart line endings and padding", case)


def test_fuzz_exif_orientation_values(request: pytest.FixtureRequest):
    """JPEGs of any size with any orientation value, valid (1-8) or not: always classified."""

    @FUZZ
    @given(
        width=st.integers(1, 700),
        height=st.integers(1, 700),
        orientation=st.one_of(st.integers(0, 9), st.sampled_from([255, 65535])),
    )
    def case(tally: Tally, width: int, height: int, orientation: int) -> None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encode(
            synthetic_rgb(width, height, seed=width, content="gradient"),
            "JPEG",
            exif=exif.tobytes(),
        )
        reply = tally.check(classify(data, "image/jpeg"), data)
        assert reply.status == 200, reply.payload

    run(request, "EXIF orientation values", case)


# --- the leak check itself ----------------------------------------------------------------------


def test_the_leak_check_tells_echoes_from_leaks():
    """A client's own value quoted back is not a leak; internals outside a quote always are."""
    echoed = json.dumps({"error": "x", "message": "Content-Type '.py' is not supported"})
    assert leaks(echoed, ("", ".PY")) == []
    cut = json.dumps({"error": "x", "message": "Content-Type 'a/" + "b" * 38 + "…' is bad"})
    assert leaks(cut, ("A/" + "B" * 300 + ".py",)) == []
    # The same marker outside a quote is a leak, even if the client sent it too.
    leaked = json.dumps({"error": "x", "message": "Traceback: failed in /work/main/app.py"})
    assert {"Traceback", "/work", ".py"} <= set(leaks(leaked, ("Traceback /work/main/app.py",)))
    assert (
        leaks(json.dumps({"error": "x", "message": "Traceback (most recent call last)"}), "") != []
    )
    # A quote that is not the client's own value is no echo.
    invented = json.dumps({"error": "x", "message": "could not read '/work/main/x.py'"})
    assert leaks(invented, ("image/png",)) != []


def test_an_empty_body_typed_dot_py_passes_the_leak_check():
    """The case hypothesis found with 9,649 cases: the 415 echoes the type; it is not a leak."""
    reply = classify(b"", ".PY")
    assert reply.status == 415 and "'.py'" in reply.payload["message"]
    check_reply(reply, b"")
