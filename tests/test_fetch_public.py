"""IXI over HTTP and HCP over S3, each against a server the test starts on 127.0.0.1 with data the test makes."""

import gzip
import hashlib
import http.server
import io
import socket
import subprocess
import sys
import tarfile
import threading
import time

import nibabel as nib
import numpy as np
import pytest

from mrisr.cli import main
from mrisr.errors import InputError
from mrisr.fetch import ixi
from mrisr.io import load_volume

#: The command the fetch_hcp rule runs, with the bucket and release of the schema's defaults.
HCP_FETCH = ["fetch", "hcp", "--bucket", "hcp-openaccess", "--prefix", "HCP_1200", "--subject"]

IXI_AFFINE = np.diag([0.9375, 0.9375, 1.2, 1.0])


def _head(rng, shape=(40, 40, 30)):
    """A bright ellipsoid 'head' in dark noise."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    inside = (grid ** 2).sum(axis=0) < 0.6
    return (inside * 300 + rng.normal(20, 5, shape)).astype(np.float32), inside


def _nifti_gz(data, affine) -> bytes:
    return gzip.compress(nib.Nifti1Image(data, affine).to_bytes())


def make_ixi_tar(rng, ids=("IXI002", "IXI012", "IXI013")) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for i, sid in enumerate(ids):
            payload = _nifti_gz(_head(rng)[0], IXI_AFFINE)
            member = tarfile.TarInfo(f"{sid}-Guys-08{i}8-T1.nii.gz")
            member.size = len(payload)
            archive.addfile(member, io.BytesIO(payload))
        readme = b"not a scan"
        info = tarfile.TarInfo("README.txt")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))
    return buffer.getvalue()


class TarServer(http.server.BaseHTTPRequestHandler):
    """Serves one payload with HTTP Range; the first response is cut a third of the way."""

    payload = b""
    cut = True
    ranges: list = []

    def do_GET(self):  # noqa: N802
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        TarServer.ranges.append(start)
        self.send_response(206 if start else 200)
        body = TarServer.payload[start:]
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(TarServer.payload) - 1}/{len(TarServer.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if TarServer.cut:
            TarServer.cut = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def ixi_server(rng):
    TarServer.payload, TarServer.cut, TarServer.ranges = make_ixi_tar(rng), True, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TarServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/IXI-T1.tar"
    httpd.shutdown()


def test_ixi_download_resumes_then_extracts_scans_with_head_masks(ixi_server, tmp_path, capsys):
    tar = tmp_path / "downloads" / "IXI-T1.tar"
    sha = hashlib.sha256(TarServer.payload).hexdigest()
    args = ["fetch", "download", "--url", ixi_server, "--sha256", sha, "--size", str(len(TarServer.payload)), "--out", str(tar)]
    started = time.perf_counter()
    assert main(args) != 0 and not tar.exists()  # the cut: the partial file is kept, not passed as complete
    assert "rerun to resume" in capsys.readouterr().err
    assert main(args) == 0 and tar.read_bytes() == TarServer.payload
    assert TarServer.ranges[0] == 0 and TarServer.ranges[1] > 0  # the second request resumed
    fetched = time.perf_counter() - started
    assert main(["fetch", "ixi", "--tar", str(tar), "--subjects", "IXI012", "IXI002", "--out-dir",
                 str(tmp_path / "raw")]) == 0
    print(f"IXI test fetch: {len(TarServer.payload)} bytes in {fetched:.2f} s")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["sub-IXI002", "sub-IXI012"]
    t1w = load_volume(tmp_path / "raw/sub-IXI002/sub-IXI002_T1w.nii.gz")
    np.testing.assert_allclose(t1w.affine, IXI_AFFINE)
    mask = np.asanyarray(load_volume(tmp_path / "raw/sub-IXI002/sub-IXI002_mask.nii.gz", role="mask").dataobj) > 0
    truth = _head(np.random.default_rng(0))[1]
    assert (mask == truth).mean() > 0.98


def test_ixi_subject_missing_from_the_archive_is_named(tmp_path, rng):
    tar = tmp_path / "IXI-T1.tar"
    tar.write_bytes(make_ixi_tar(rng))
    with pytest.raises(InputError, match="has no T1 scan for IXI999"):
        ixi.extract_subjects(tar, ["IXI002", "IXI999"], tmp_path / "raw")
    assert ixi.subject_id("IXI-T1/IXI002-Guys-0828-T1.nii.gz") == "IXI002" and ixi.subject_id("README.txt") is None


@pytest.fixture
def s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _put_hcp_subject(endpoint, subject, t1w, labels, affine):
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    if "hcp-openaccess" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="hcp-openaccess")
    for key, data in {"T1w_acpc_dc_restore_brain.nii.gz": t1w, "aparc+aseg.nii.gz": labels}.items():
        client.put_object(Bucket="hcp-openaccess", Key=f"HCP_1200/{subject}/T1w/{key}", Body=_nifti_gz(data, affine))


def test_hcp_subject_is_fetched_with_mask_and_tissue_labels(s3, tmp_path, rng):
    affine = np.diag([0.7, 0.7, 0.7, 1.0])
    labels = np.zeros((12, 12, 12), np.int32)
    labels[2:10, 2:10, 2:10] = 2            # cerebral white matter
    labels[3:5, 3:9, 3:9] = 1021            # a cortical parcel: grey matter
    labels[6:8, 6:8, 6:8] = 4               # lateral ventricle: CSF
    labels[9, 9, 9] = 17                    # hippocampus: grey matter
    t1w = np.where(labels > 0, rng.normal(500, 50, labels.shape), 0).astype(np.float32)
    _put_hcp_subject(s3, "100307", t1w, labels, affine)
    out = tmp_path / "sub-100307"
    assert main([*HCP_FETCH, "100307", "--out-dir", str(out), "--endpoint-url", s3]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sub-100307_T1w.nii.gz", "sub-100307_dseg.nii.gz",
                                                     "sub-100307_mask.nii.gz"]
    dseg = np.asanyarray(nib.load(out / "sub-100307_dseg.nii.gz").dataobj)
    expected = np.zeros_like(dseg)
    expected[labels == 2], expected[labels == 1021], expected[labels == 4], expected[labels == 17] = 3, 2, 1, 2
    np.testing.assert_array_equal(dseg, expected)
    np.testing.assert_array_equal(np.asanyarray(nib.load(out / "sub-100307_mask.nii.gz").dataobj), labels > 0)
    np.testing.assert_allclose(nib.load(out / "sub-100307_T1w.nii.gz").affine, affine)


def test_hcp_without_credentials_or_with_an_unknown_subject_says_what_to_do(s3, tmp_path, monkeypatch, capsys):
    assert main([*HCP_FETCH, "999999", "--out-dir", str(tmp_path / "a"), "--endpoint-url", s3]) != 0
    assert "HCP_1200/999999/T1w/T1w_acpc_dc_restore_brain.nii.gz" in capsys.readouterr().err
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main([*HCP_FETCH, "100307", "--out-dir", str(tmp_path / "b"), "--endpoint-url", s3]) != 0
    err = capsys.readouterr().err
    assert "no AWS credentials" in err and "AWS_ACCESS_KEY_ID" in err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_verbose_logs_never_show_aws_credentials(s3, tmp_path, monkeypatch, rng):
    """``-v`` turns on debug logging; botocore's debug log holds request headers (key id, session token)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAVISIBLEKEYID0001")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SESSIONTOKENSECRET0001")
    labels = np.zeros((12, 12, 12), np.int32)
    labels[2:10, 2:10, 2:10] = 2
    _put_hcp_subject(s3, "100307", np.where(labels > 0, rng.normal(500, 50, labels.shape), 0).astype(np.float32),
                     labels, np.eye(4))
    result = subprocess.run([sys.executable, "-m", "mrisr", "-v", *HCP_FETCH, "100307", "--out-dir",
                             str(tmp_path / "sub"), "--endpoint-url", s3], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "AKIAVISIBLEKEYID0001" not in result.stderr and "SESSIONTOKENSECRET0001" not in result.stderr
