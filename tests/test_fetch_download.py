"""Downloads against a server the test runs on 127.0.0.1: no test reaches the internet."""

import hashlib
import http.server
import io
import sys
import tarfile
import threading
import time

import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.fetch.download import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def _tar(size: int) -> bytes:
    """A tar archive holding one file of ``size`` random bytes, with its end-of-archive blocks."""
    buffer = io.BytesIO()
    data = np.random.default_rng(0).bytes(size)
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("IXI-T1/IXI002-Guys-0828-T1.nii.gz")
        info.size = size
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` as HTTP/1.0 does (the end of a body without Content-Length is the connection's close)."""

    requests: list = []
    cut_first = False
    honour_range = True
    body = PAYLOAD
    content_type = "application/octet-stream"
    send_length = True
    range_offset = 0  # a 206 that starts this many bytes before the asked start (a broken proxy)
    length_header = None  # a Content-Length to send instead of the body's
    trickle = 0.0  # seconds between bytes: a server that sends a byte at a time, never idle long enough to time out

    def do_GET(self):  # noqa: N802 (http.server's naming)
        Handler.requests.append(self.headers.get("Range"))
        payload, start = Handler.body, 0
        if self.headers.get("Range") and Handler.honour_range:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.end_headers()
                return
            start -= Handler.range_offset
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        else:
            self.send_response(200)
        body = payload[start:]
        self.send_header("Content-Type", Handler.content_type)
        if Handler.send_length:
            self.send_header("Content-Length", Handler.length_header or str(len(body)))
        self.end_headers()
        if Handler.cut_first:
            Handler.cut_first = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        if Handler.trickle:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(Handler.trickle)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    """A client that refuses a body hangs up before it is sent: that is the test's point, not a server error."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def server():
    Handler.requests, Handler.cut_first, Handler.honour_range = [], False, True
    Handler.body, Handler.content_type, Handler.send_length, Handler.range_offset = PAYLOAD, "application/octet-stream", True, 0
    Handler.length_header, Handler.trickle = None, 0.0
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/weights.pth"
    httpd.shutdown()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_and_skips_when_present(server, tmp_path):
    dest = download(server, tmp_path / "w.pth", SHA, size=len(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    download(server, dest, SHA, progress=False)
    assert len(Handler.requests) == 1


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    Handler.cut_first = True
    with pytest.raises(InputError, match="rerun to resume"):
        download(server, tmp_path / "w.pth", SHA, progress=False, timeout=5)
    part = tmp_path / "w.pth.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "w.pth").exists()
    download(server, tmp_path / "w.pth", SHA, progress=False)
    assert Handler.requests[-1] == f"bytes={len(PAYLOAD) // 3}-"
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD and not part.exists()


def test_server_without_ranges_restarts(server, tmp_path):
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD[:1000])
    Handler.honour_range = False
    download(server, tmp_path / "w.pth", SHA, progress=False)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    with pytest.raises(InputError, match="sha256") as err:
        download(server, tmp_path / "w.pth", "0" * 64, progress=False)
    assert server in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_an_html_page_is_refused_even_without_a_hash(server, tmp_path):
    Handler.body, Handler.content_type = b"<!DOCTYPE html><html>Sign in</html>", "text/html; charset=utf-8"
    with pytest.raises(InputError, match="an HTML page.*Fix: check the URL"):
        download(server, tmp_path / "IXI-T1.tar", None, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_body_cut_short_without_content_length_is_not_taken_for_the_file(server, tmp_path):
    whole = _tar(300_000)
    Handler.body, Handler.send_length = whole[: len(whole) // 2], False
    with pytest.raises(InputError, match="not the whole file: it is cut short"):
        download(server, tmp_path / "IXI-T1.tar", None, progress=False)
    assert list(tmp_path.iterdir()) == []
    Handler.body = whole[: 512 + -(-300_000 // 512) * 512]  # cut after the member: it is whole, the archive not
    with pytest.raises(InputError, match="no end-of-archive blocks"):
        download(server, tmp_path / "IXI-T1.tar", None, progress=False)
    Handler.body = whole
    assert download(server, tmp_path / "IXI-T1.tar", None, progress=False).read_bytes() == whole


def test_a_file_of_unknown_format_with_no_length_anywhere_is_refused(server, tmp_path):
    Handler.send_length = False
    with pytest.raises(InputError, match="no Content-Length.*no size or hash"):
        download(server, tmp_path / "w.bin", None, progress=False)
    assert download(server, tmp_path / "w.bin", SHA, progress=False).read_bytes() == PAYLOAD


def test_a_range_answer_for_other_bytes_restarts_the_download(server, tmp_path):
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD[:1000])
    Handler.range_offset = 10
    download(server, tmp_path / "w.pth", SHA, progress=False)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD
    assert Handler.requests == ["bytes=1000-", None]


def test_a_part_that_holds_every_byte_is_checked_and_kept(server, tmp_path):
    """Stopped while hashing: the rerun's range is past the end (HTTP 416), the file is whole."""
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD)
    assert download(server, tmp_path / "w.pth", SHA, progress=False).read_bytes() == PAYLOAD
    assert Handler.requests == [f"bytes={len(PAYLOAD)}-"]
    (tmp_path / "w.pth").unlink()
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD[:-1] + b"x")  # every byte there, one of them wrong
    with pytest.raises(InputError, match="does not match"):
        download(server, tmp_path / "w.pth", SHA, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_md5_is_checked_where_the_publisher_gives_one(server, tmp_path):
    with pytest.raises(InputError, match="md5 .* does not match"):
        download(server, tmp_path / "w.pth", None, md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []
    dest = download(server, tmp_path / "w.pth", None, md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert dest.read_bytes() == PAYLOAD
    download(server, dest, None, md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert len(Handler.requests) == 2  # the second call found the file whole and fetched nothing


@pytest.mark.parametrize("length", ["abc", "-5", "12 34"])
def test_a_length_that_is_not_a_byte_count_is_refused_by_the_command(server, tmp_path, capsys, length):
    from mrisr.cli import main

    Handler.length_header = length
    assert main(["fetch", "download", "--url", server, "--out", str(tmp_path / "w.pth")]) == 2
    err = capsys.readouterr().err
    assert f"Content-Length: {length!r}" in err and "Fix:" in err and "Traceback" not in err
    assert not (tmp_path / "w.pth").exists()


@pytest.mark.parametrize("page", [b"<!-- generated -->\n<!DOCTYPE html><html>Sign in</html>",
                                  b"\xef\xbb\xbf  <!--a--><!-- b -->\n<html><body>moved</body></html>",
                                  b"<!-- a banner that runs past the first 512 bytes " + b"x" * 600])
def test_an_html_page_behind_comments_is_refused_by_the_command(server, tmp_path, capsys, page):
    from mrisr.cli import main

    Handler.body = page  # served as application/octet-stream: only its bytes tell
    assert main(["fetch", "download", "--url", server, "--out", str(tmp_path / "IXI-T1.tar")]) == 2
    assert "it is an HTML page" in capsys.readouterr().err
    assert not (tmp_path / "IXI-T1.tar").exists()


def test_a_download_never_runs_past_its_pinned_size(server, tmp_path):
    """A declared length other than the pinned size is refused before a byte is read; a body without a declared
    length stops at the pinned size instead of filling the disk; nothing lands at the destination."""
    with pytest.raises(InputError, match=f"declares {len(PAYLOAD)} bytes, the config pins 1000"):
        download(server, tmp_path / "w.pth", SHA, size=1000, progress=False)
    assert not (tmp_path / "w.pth").exists() and not (tmp_path / "w.pth.part").exists()
    Handler.send_length = False
    with pytest.raises(InputError, match="sends more than the 1000 bytes the config pins"):
        download(server, tmp_path / "v.pth", SHA, size=1000, progress=False)
    assert not (tmp_path / "v.pth").exists() and (tmp_path / "v.pth.part").stat().st_size <= 1000


def test_a_linked_part_file_is_refused_and_its_target_left_alone(server, tmp_path):
    """The `.part` file is mrisr's own: a link there (to a user's file, say) is refused, not appended to."""
    target = tmp_path / "users_file"
    target.write_bytes(b"keep me")
    (tmp_path / "w.pth.part").symlink_to(target)
    with pytest.raises(InputError, match=r"w\.pth\.part: is a link"):
        download(server, tmp_path / "w.pth", SHA, progress=False)
    assert target.read_bytes() == b"keep me" and Handler.requests == []


def test_a_server_that_trickles_is_stopped_by_the_deadline_and_the_download_resumes(server, tmp_path, monkeypatch):
    """Each byte well within the socket's timeout, the whole far too slow: the download stops at the deadline (a
    minimum average rate after a grace period), keeps its bytes, and a rerun resumes from them."""
    monkeypatch.setattr("mrisr.fetch.download.GRACE_S", 0.5)
    monkeypatch.setattr("mrisr.fetch.download.MIN_RATE", 20)
    Handler.trickle = 0.1
    started = time.monotonic()
    with pytest.raises(InputError, match="download stopped .*slower than 0.02 kB/s on average after 0.5 s.*Fix: rerun"):
        download(server, tmp_path / "w.pth", SHA, timeout=5, progress=False)
    assert time.monotonic() - started < 10
    kept = (tmp_path / "w.pth.part").stat().st_size
    assert 0 < kept < len(PAYLOAD)
    Handler.trickle = 0.0
    assert download(server, tmp_path / "w.pth", SHA, progress=False).read_bytes() == PAYLOAD
    assert Handler.requests[-1] == f"bytes={kept}-"
