"""HCP Young Adult from the ``hcp-openaccess`` S3 bucket, with the user's own AWS credentials.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws``); the project never stores them. Per subject: ``T1w/T1w_acpc_dc_restore_brain.nii.gz`` (0.7 mm,
brain-extracted; its non-zero voxels are the mask) and ``T1w/aparc+aseg.nii.gz`` on the same grid, mapped to
the tissue classes background 0, CSF 1, GM 2, WM 3.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io import atomic_path, load_volume, same_grid, save_volume, voxel_sizes

log = logging.getLogger(__name__)
T1W_KEY = "{prefix}/{subject}/T1w/T1w_acpc_dc_restore_brain.nii.gz"
LABELS_KEY = "{prefix}/{subject}/T1w/aparc+aseg.nii.gz"

#: FreeSurfer aseg labels by tissue (cortical parcels 1000-2999 are grey matter). Unlisted labels are background.
CSF = (4, 5, 14, 15, 24, 43, 44, 72, 213, 221)
GREY = (3, 8, 10, 11, 12, 13, 17, 18, 26, 42, 47, 49, 50, 51, 52, 53, 54, 58, 80)
WHITE = (2, 7, 16, 28, 41, 46, 60, 77, 85, 251, 252, 253, 254, 255)


def tissue_classes(aparc_aseg: np.ndarray) -> np.ndarray:
    labels = np.asarray(aparc_aseg).astype(np.int32)
    tissue = np.zeros(labels.shape, np.uint8)
    tissue[np.isin(labels, CSF)] = 1
    tissue[np.isin(labels, GREY) | ((labels >= 1000) & (labels < 3000))] = 2
    tissue[np.isin(labels, WHITE)] = 3
    return tissue


def _client(endpoint_url: str | None):
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None)


def _download(client, bucket: str, key: str, target: Path) -> None:
    from botocore.exceptions import ClientError, NoCredentialsError

    try:
        with atomic_path(target) as tmp:
            client.download_file(bucket, key, str(tmp))
    except NoCredentialsError as exc:
        raise InputError(f"s3://{bucket}/{key}", "no AWS credentials found",
                         "put your HCP ConnectomeDB S3 keys in a profile of ~/.aws/credentials and set AWS_PROFILE "
                         "to its name (rather than exporting AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: SLURM copies "
                         "the environment into every job); the project never stores them") from exc
    except ClientError as exc:
        raise InputError(f"s3://{bucket}/{key}", f"cannot be fetched ({exc})",
                         "check the subject id, the bucket and that your credentials have HCP access") from exc


def fetch_subject(subject: str, out_dir: str | Path, bucket: str, prefix: str,
                  endpoint_url: str | None) -> dict[str, Path]:
    """Write ``sub-<id>_T1w``, ``_mask`` (T1w > 0) and ``_dseg`` (tissue classes) into ``out_dir``."""
    out = Path(out_dir)
    client = _client(endpoint_url)
    t1w = out / f"sub-{subject}_T1w.nii.gz"
    raw_labels = out / f".sub-{subject}_aparc+aseg.nii.gz"
    _download(client, bucket, T1W_KEY.format(prefix=prefix, subject=subject), t1w)
    _download(client, bucket, LABELS_KEY.format(prefix=prefix, subject=subject), raw_labels)
    try:
        image = load_volume(t1w)
        labels = load_volume(raw_labels, role="label map")
        if not same_grid(labels, image):
            raise InputError(raw_labels, "aparc+aseg is not on the T1w grid", "report it: HCP ships both in T1w space")
        mask = np.asanyarray(image.dataobj) > 0
        written = {"T1w": t1w,
                   "mask": save_volume(mask.astype(np.uint8), image.affine, out / f"sub-{subject}_mask.nii.gz"),
                   "dseg": save_volume(tissue_classes(np.asanyarray(labels.dataobj)), image.affine,
                                       out / f"sub-{subject}_dseg.nii.gz")}
    finally:
        raw_labels.unlink(missing_ok=True)
    log.info("HCP %s: %s voxels of %s mm", subject, image.shape, voxel_sizes(image.affine))
    return written
