"""Downloads against a server the test runs on 127.0.0.1: no test reaches the internet."""

import hashlib
import http.server
import threading

import pytest

from mrisr.errors import InputError
from mrisr.fetch.download import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    requests: list = []
    cut_first = False
    honour_range = True

    def do_GET(self):  # noqa: N802 (http.server's naming)
        Handler.requests.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range") and Handler.honour_range:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.cut_first:
            Handler.cut_first = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.requests, Handler.cut_first, Handler.honour_range = [], False, True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
