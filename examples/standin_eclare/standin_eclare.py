"""run-eclare's command line on float32 NIfTI-1 files, in pure Python (no numpy in its environment).

The thickest axis is split into round(thick / thin) voxels per thick voxel over the same field of view (ECLARE's
convention: the first thin voxel's centre lies (scale - 1) / 2 thin voxels before the first thick one's), each the
linear interpolation of the thick voxels at its position; the affine moves as radifox's update_affine moves it.
"""

import argparse
import gzip
import struct
import sys
from array import array
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--in-fpath", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--n-patches", type=int, default=1000000)
    parser.add_argument("--relative-slice-thickness", type=float)
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args(argv)
    raw = gzip.decompress(Path(args.in_fpath).read_bytes())
    header = bytearray(raw[:348])
    dims = struct.unpack_from("<8h", header, 40)
    if struct.unpack_from("<h", header, 70)[0] != 16:
        sys.exit("stand-in ECLARE reads float32 files only")
    shape = list(dims[1:4])
    zooms = list(struct.unpack_from("<3f", header, 80))
    rows = [list(struct.unpack_from("<4f", header, 280 + 16 * r)) for r in range(3)]
    offset = int(struct.unpack_from("<f", header, 108)[0])
    data = array("f")
    data.frombytes(raw[offset:offset + 4 * shape[0] * shape[1] * shape[2]])
    axis = max(range(3), key=lambda a: zooms[a])
    scale = round(zooms[axis] / min(z for a, z in enumerate(zooms) if a != axis))
    n = shape[axis]
    out_shape = list(shape)
    out_shape[axis] = n * scale
    strides = [1, shape[0], shape[0] * shape[1]]
    out_strides = [1, out_shape[0], out_shape[0] * out_shape[1]]
    out = array("f", bytes(4 * out_shape[0] * out_shape[1] * out_shape[2]))
    for j in range(n * scale):
        position = min(max((j + 0.5) / scale - 0.5, 0.0), n - 1.0)
        low = min(int(position), n - 2) if n > 1 else 0
        weight = position - low
        high = min(low + 1, n - 1)
        others = [a for a in range(3) if a != axis]
        for u in range(shape[others[0]]):
            for v in range(shape[others[1]]):
                base = u * strides[others[0]] + v * strides[others[1]]
                out_base = u * out_strides[others[0]] + v * out_strides[others[1]]
                value = (1 - weight) * data[base + low * strides[axis]] + weight * data[base + high * strides[axis]]
                out[out_base + j * out_strides[axis]] = value
    for r in range(3):
        rows[r][axis] /= scale
        rows[r][3] -= rows[r][axis] * (scale - 1) / 2
    struct.pack_into("<h", header, 42 + 2 * axis, out_shape[axis])
    struct.pack_into("<f", header, 80 + 4 * axis, zooms[axis] / scale)
    struct.pack_into("<h", header, 252, 0)  # the sform alone says where voxels are
    for r in range(3):
        struct.pack_into("<4f", header, 280 + 16 * r, *rows[r])
    struct.pack_into("<f", header, 108, 352.0)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = Path(args.in_fpath).name.replace(".nii", "_eclare.nii")
    (out_dir / name).write_bytes(gzip.compress(bytes(header) + bytes(4) + out.tobytes()))
    print(f"stand-in ECLARE: {args.n_patches} patches, slice thickness {args.relative_slice_thickness}")


if __name__ == "__main__":
    main()
