import hashlib

import nibabel as nib
import numpy as np
import pytest

from mrisr.fetch.demo import make_demo_subject, template_subject

TRANSFORMS = {"degrees": 6.0, "scales": 0.06, "elastic_displacement": 6.0, "bias_coefficients": 0.4, "log_gamma": 0.25}


@pytest.fixture(scope="module")
def template():
    return template_subject()


def _digest(paths):
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items()}


def test_template_labels_and_mask(template):
    labels = template.dseg.numpy()[0]
    mask = template.mask.numpy()[0]
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert np.array_equal(labels > 0, mask > 0)
    assert template.T1w.shape == (1, 197, 233, 189)


def test_same_seed_same_bytes_and_subjects_differ(tmp_path, template):
    a = make_demo_subject(tmp_path / "a", "01", 0, 4.0, TRANSFORMS, template)
    b = make_demo_subject(tmp_path / "b", "01", 0, 4.0, TRANSFORMS, template)
    c = make_demo_subject(tmp_path / "c", "02", 0, 4.0, TRANSFORMS, template)
    assert _digest(a) == _digest(b)
    assert _digest(a)["T1w"] != _digest(c)["T1w"]
    t1 = nib.load(a["T1w"])
    np.testing.assert_allclose(t1.header.get_zooms(), (4.0, 4.0, 4.0))
    for key in ("mask", "dseg"):
        other = nib.load(a[key])
        assert other.shape == t1.shape and np.allclose(other.affine, t1.affine)
    labels = np.asanyarray(nib.load(a["dseg"]).dataobj)
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and len(np.unique(labels)) == 4
    assert np.asanyarray(t1.dataobj).dtype == np.float32
