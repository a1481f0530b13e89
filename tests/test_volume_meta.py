"""Header-only volume metadata: NRRD, DICOM, NIfTI and .npy files written by the real libraries.

Expected geometry is computed here independently: the file's native index->world affine is
converted to RAS (negate world rows x and y for LPS), every voxel centre is pushed through it
and through the normalised meta, and the two point clouds must coincide.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import msgpack
import nibabel
import nrrd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pvc.errors import BadInput, UsageError
from pvc.project.volume import dicom_series_meta, group_dicom_series, volume_meta

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def rotation(z_deg: float, x_deg: float) -> np.ndarray:
    """Rotation about z by z_deg, then about x by x_deg."""
    a, b = math.radians(z_deg), math.radians(x_deg)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return rx @ rz


def voxel_centres(linear: np.ndarray, origin: np.ndarray, dims) -> np.ndarray:
    """World positions of every voxel centre, lexicographically sorted (order-free comparison)."""
    ijk = np.array(list(itertools.product(*(range(n) for n in dims))), float)
    points = ijk @ np.asarray(linear).T + origin
    return points[np.lexsort(np.round(points, 6).T[::-1])]


def meta_linear(meta: dict) -> np.ndarray:
    """Column-vector linear map of the normalised meta, checked against IJK2WorldMatrix."""
    linear = np.array(meta["directions"]).reshape(3, 3) * np.array(meta["spacing"])
    matrix = np.array(meta["IJK2WorldMatrix"]).reshape(4, 4)
    np.testing.assert_allclose(matrix[:3, :3], linear.T, atol=1e-8)  # SDK layout: rows = axes
    np.testing.assert_allclose(matrix[:3, 3], meta["origin"], atol=1e-8)
    np.testing.assert_allclose(matrix[3], [0, 0, 0, 1])
    return linear


def assert_same_voxels(meta: dict, native_ras_linear: np.ndarray, native_ras_origin, native_dims):
    """Normalised geometry addresses exactly the voxels of the native geometry (in RAS)."""
    dims = [meta["dimensionsIJK"][k] for k in "xyz"]
    assert sorted(dims) == sorted(native_dims)
    affine = np.eye(4)
    affine[:3, :3] = native_ras_linear
    nib_map = [None] * 3  # nibabel's ornt[native axis] = [RAS axis, +-1], inverted
    for axis, (world, sign) in enumerate(nibabel.orientations.io_orientation(affine)):
        nib_map[int(world)] = [axis, bool(sign < 0)]
    assert meta["native"]["axis_map"] == nib_map
    expected = voxel_centres(native_ras_linear, np.asarray(native_ras_origin, float), native_dims)
    got = voxel_centres(meta_linear(meta), np.array(meta["origin"]), dims)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def assert_points_to_ras(meta: dict) -> None:
    """Each index axis is closest to its own RAS axis, positively, and the frame is a rotation."""
    d = np.array(meta["directions"]).reshape(3, 3)
    assert np.all(np.argmax(np.abs(d), axis=0) == [0, 1, 2])
    assert np.all(np.diag(d) > 0)
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-8)
    assert np.linalg.det(d) == pytest.approx(1.0)


def assert_plain(meta: dict) -> None:
    """Only JSON/msgpack types, and the dict survives both round-trips unchanged."""
    assert json.loads(json.dumps(meta)) == meta
    assert msgpack.unpackb(msgpack.packb(meta), strict_map_key=False) == meta


def write_nrrd(path: Path, sizes, header: dict, dtype=np.int16) -> Path:
    nrrd.write(str(path), np.zeros(sizes, dtype), header)
    return path


# --- NRRD -------------------------------------------------------------------------------


def test_nrrd_lps_axis_aligned(tmp_path):
    """LPS axes point L and P, so i and j flip; origin moves to the far corner in R and A."""
    path = write_nrrd(tmp_path / "a.nrrd", (3, 4, 5), {
        "space": "left-posterior-superior",
        "space directions": np.diag([0.5, 0.7, 2.0]),
        "space origin": np.array([10.0, 20.0, 30.0]),
    })  # fmt: skip
    meta = volume_meta([path])
    assert_plain(meta)
    assert meta["format"] == "nrrd" and meta["dtype"] == "int16" and meta["ACS"] == "RAS"
    assert meta["source_space"] == "left-posterior-superior"
    assert meta["dimensionsIJK"] == {"x": 3, "y": 4, "z": 5}
    assert meta["directions"] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert meta["spacing"] == pytest.approx([0.5, 0.7, 2.0])
    assert meta["origin"] == pytest.approx([-10 - 0.5 * 2, -20 - 0.7 * 3, 30])
    assert meta["IJK2WorldMatrix"] == pytest.approx(
        [0.5, 0, 0, -11, 0, 0.7, 0, -22.1, 0, 0, 2, 30, 0, 0, 0, 1]
    )
    assert meta["channelsCount"] == 1 and meta["rescaleSlope"] == 1 and meta["rescaleIntercept"] == 0
    assert meta["native"] == {
        "space": "left-posterior-superior",
        "directions": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        "origin": [10, 20, 30],
        "spacing": [0.5, 0.7, 2.0],
        "dimensions": [3, 4, 5],
        "axis_map": [[0, True], [1, True], [2, False]],
    }
    assert_same_voxels(meta, LPS_TO_RAS @ np.diag([0.5, 0.7, 2.0]), [-10, -20, 30], (3, 4, 5))


def test_nrrd_ras_axis_aligned_is_unchanged(tmp_path):
    path = write_nrrd(tmp_path / "a.nrrd", (3, 4, 5), {
        "space": "RAS", "space directions": np.diag([0.5, 0.7, 2.0]), "space origin": [1.0, 2.0, 3.0],
    }, np.float32)  # fmt: skip
    meta = volume_meta([path])
    assert meta["source_space"] == "right-anterior-superior" and meta["dtype"] == "float32"
    assert meta["origin"] == [1, 2, 3] and meta["directions"] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert meta["native"]["axis_map"] == [[0, False], [1, False], [2, False]]


def test_nrrd_permuted_and_flipped(tmp_path):
    """Axis 0 runs inferior, axis 1 left, axis 2 anterior (LPS file): all three get reordered."""
    rows = np.array([[0, 0, -2.0], [0.5, 0, 0], [0, -0.7, 0]])  # pynrrd: one row per axis
    path = write_nrrd(tmp_path / "p.nrrd", (3, 4, 5), {
        "space": "left-posterior-superior", "space directions": rows, "space origin": [10.0, 20.0, 30.0],
    })  # fmt: skip
    meta = volume_meta([path])
    assert meta["dimensionsIJK"] == {"x": 4, "y": 5, "z": 3}
    assert meta["spacing"] == pytest.approx([0.5, 0.7, 2.0])
    assert meta["directions"] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert meta["native"]["axis_map"] == [[1, True], [2, False], [0, True]]
    # first voxel: native (2, 3, 0) -> RAS (-10, -20, 30) + 2*(0,0,-2) + 3*(-0.5,0,0)
    assert meta["origin"] == pytest.approx([-11.5, -20, 26])
    assert_same_voxels(meta, LPS_TO_RAS @ rows.T, [-10, -20, 30], (3, 4, 5))


@pytest.mark.parametrize("space", ["left-posterior-superior", "right-anterior-superior", "LAS"])
def test_nrrd_oblique(tmp_path, space):
    """A known rotation survives as a proper rotation close to identity, voxel for voxel."""
    rot, spacing, origin = rotation(20, 10), np.array([0.8, 0.9, 1.5]), np.array([-5.0, 7.0, 11.0])
    linear = rot @ np.diag(spacing)
    path = write_nrrd(tmp_path / "o.nrrd", (4, 3, 2), {
        "space": space, "space directions": linear.T, "space origin": origin,
    })  # fmt: skip
    meta = volume_meta([path])
    to_ras = {"left-posterior-superior": LPS_TO_RAS, "LAS": np.diag([-1.0, 1, 1])}.get(space, np.eye(3))
    assert_points_to_ras(meta)
    assert_same_voxels(meta, to_ras @ linear, to_ras @ origin, (4, 3, 2))
    if space == "left-posterior-superior":  # rotation is near identity: only i and j flip
        expected = LPS_TO_RAS @ rot @ np.diag([-1.0, -1.0, 1.0])
        np.testing.assert_allclose(np.reshape(meta["directions"], (3, 3)), expected, atol=1e-8)
    np.testing.assert_allclose(np.reshape(meta["native"]["directions"], (3, 3)), rot, atol=1e-8)


def test_nrrd_vector_axis_and_no_space(tmp_path):
    vec = write_nrrd(tmp_path / "v.nrrd", (3, 4, 5, 6), {
        "space": "RAS", "kinds": ["RGB-color", "domain", "domain", "domain"],
        "space directions": np.array([[np.nan] * 3, [1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]]),
    }, np.uint8)  # fmt: skip
    meta = volume_meta([vec])
    assert meta["channelsCount"] == 3 and meta["dimensionsIJK"] == {"x": 4, "y": 5, "z": 6}
    assert meta["spacing"] == [1, 2, 3] and meta["origin"] == [0, 0, 0]
    bare = write_nrrd(tmp_path / "b.nrrd", (3, 4), {"spacings": [0.5, 0.25]})
    meta = volume_meta([bare])
    assert meta["source_space"] is None and meta["native"]["space"] is None
    assert meta["dimensionsIJK"] == {"x": 3, "y": 4, "z": 1} and meta["spacing"] == [0.5, 0.25, 1]


# --- DICOM ------------------------------------------------------------------------------


def write_dicom(path: Path, series_uid: str, iop, ipp, **extra) -> Path:
    """A minimal CT slice written by pydicom in proper file format (no pixel data needed)."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "CT", series_uid, "1.2.3.4"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "SECRET-42", "19700101"
    ds.Rows, ds.Columns, ds.PixelSpacing, ds.SliceThickness = 3, 2, [0.8, 0.6], 2.5
    ds.ImageOrientationPatient = [round(float(v), 8) for v in iop]
    ds.ImagePositionPatient = [round(float(v), 6) for v in ipp]
    ds.PhotometricInterpretation, ds.SamplesPerPixel = "MONOCHROME2", 1
    ds.BitsAllocated, ds.PixelRepresentation = 16, 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, -1024, 40, 400
    for key, value in extra.items():
        setattr(ds, key, value)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def oblique_series(tmp_path: Path, gaps=(2.5, 2.5, 2.5)) -> tuple[list[Path], dict]:
    """Four slices along an oblique normal, written so that name order != position order."""
    rot = rotation(15, -10)
    row, col = rot[:, 0], rot[:, 1]
    normal = np.cross(row, col)
    start = np.array([-100.0, 50.0, 20.0])
    positions = [start + d * normal for d in np.concatenate([[0], np.cumsum(gaps)])]
    names = ["c.dcm", "a.dcm", "d.dcm", "b.dcm"]  # slice k is written to names[k]
    uid = generate_uid()
    paths = [write_dicom(tmp_path / n, uid, [*row, *col], p) for n, p in zip(names, positions)]
    return paths[::-1], {"rot": rot, "start": start, "names": names, "uid": uid}


def test_dicom_oblique_series(tmp_path):
    paths, truth = oblique_series(tmp_path)
    meta = volume_meta(paths)
    assert_plain(meta)
    assert meta["format"] == "dicom" and meta["source_space"] == "left-posterior-superior"
    assert meta["slices"] == 4 and meta["slice_order"] == truth["names"]
    assert meta["problems"] == []
    assert meta["native"]["spacing"] == pytest.approx([0.6, 0.8, 2.5])
    assert meta["native"]["origin"] == pytest.approx(truth["start"])
    assert meta["native"]["dimensions"] == [2, 3, 4]
    np.testing.assert_allclose(np.reshape(meta["native"]["directions"], (3, 3)), truth["rot"], atol=1e-7)
    assert meta["dtype"] == "int16" and meta["channelsCount"] == 1
    assert (meta["rescaleSlope"], meta["rescaleIntercept"]) == (1, -1024)
    assert (meta["windowCenter"], meta["windowWidth"]) == (40, 400)
    linear = LPS_TO_RAS @ truth["rot"] @ np.diag([0.6, 0.8, 2.5])
    assert_points_to_ras(meta)
    assert_same_voxels(meta, linear, LPS_TO_RAS @ truth["start"], (2, 3, 4))
    tags = meta["dicom"]
    assert tags["Modality"] == "CT" and tags["SeriesInstanceUID"] == truth["uid"]
    assert tags["Rows"] == 3 and tags["PixelSpacing"] == [0.8, 0.6] and tags["SliceThickness"] == 2.5
    assert set(tags) == {"Modality", "SeriesInstanceUID", "StudyInstanceUID", "Rows", "Columns",
                         "PixelSpacing", "SliceThickness", "ImageOrientationPatient",
                         "PhotometricInterpretation"}  # fmt: skip
    dumped = json.dumps(meta)
    assert "Doe^Jane" not in dumped and "SECRET-42" not in dumped and "19700101" not in dumped  # not "1970": a random UID may hold it


def test_dicom_patient_tags_only_on_request(tmp_path):
    paths, _ = oblique_series(tmp_path)
    meta = volume_meta(paths, dicom_tags=["PatientName", "PatientID", "Modality"])
    assert meta["dicom"] == {"PatientName": "Doe^Jane", "PatientID": "SECRET-42", "Modality": "CT"}
    with pytest.raises(UsageError):
        volume_meta(paths, dicom_tags=["NoSuchKeyword"])


def test_dicom_unequal_gaps_are_flagged(tmp_path):
    paths, _ = oblique_series(tmp_path, gaps=(2.5, 2.5, 4.0))
    meta = dicom_series_meta(paths)
    assert meta["native"]["spacing"][2] == pytest.approx(2.5)
    assert any("unequal slice gaps" in p for p in meta["problems"])


def test_group_dicom_series(tmp_path):
    (tmp_path / "one").mkdir()
    first, _ = oblique_series(tmp_path / "one")
    other = write_dicom(tmp_path / "x.dcm", "9.9.9", [1, 0, 0, 0, 1, 0], [0, 0, 0])
    groups = group_dicom_series([other, *first])
    assert sorted(map(len, groups.values())) == [1, 4] and groups["9.9.9"] == [other]
    with pytest.raises(BadInput):
        volume_meta([other, *first])  # two series are not one volume
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(BadInput) as err:
        group_dicom_series([other, junk])
    assert "junk.dcm" in str(err.value)


def bundled(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))


def test_pydicom_ct_small():
    """CT_small: LPS axis-aligned single slice; i and j flip to face R and A."""
    meta = volume_meta([bundled("CT_small.dcm")])
    assert_plain(meta)
    assert meta["dimensionsIJK"] == {"x": 128, "y": 128, "z": 1}
    assert meta["spacing"] == pytest.approx([0.661468, 0.661468, 5.0])
    ipp = np.array([-158.135803, -179.035797, -75.699997])
    assert meta["origin"] == pytest.approx([-ipp[0] - 0.661468 * 127, -ipp[1] - 0.661468 * 127, ipp[2]])
    assert meta["directions"] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert meta["dtype"] == "int16" and meta["rescaleIntercept"] == -1024
    assert meta["dicom"]["Modality"] == "CT" and meta["slice_order"] == ["CT_small.dcm"]
    assert "CompressedSamples" not in json.dumps(meta)  # the file's PatientName


def test_pydicom_mr_small_window_and_thickness():
    meta = volume_meta([bundled("MR_small.dcm")])
    assert (meta["windowCenter"], meta["windowWidth"]) == (600, 1600)
    assert meta["spacing"] == pytest.approx([0.3125, 0.3125, 0.8])
    assert meta["dicom"]["Modality"] == "MR" and meta["dimensionsIJK"] == {"x": 64, "y": 64, "z": 1}


def test_pydicom_multiframe_rtdose():
    """rtdose.dcm: 15 frames placed by GridFrameOffsetVector, 5 mm apart."""
    meta = volume_meta([bundled("rtdose.dcm")])
    assert meta["slices"] == 15 and meta["frame_order"] == list(range(15))
    assert meta["dimensionsIJK"] == {"x": 10, "y": 10, "z": 15}
    assert meta["spacing"] == pytest.approx([10, 10, 5])
    assert meta["native"]["origin"] == pytest.approx([189.43125, 199.43125, -761.87])
    assert meta["dtype"] == "uint32" and meta["rescaleSlope"] == pytest.approx(1e-6)
    # pydicom warns about a malformed UID in this file: recorded with the item, not raised
    assert len(meta["problems"]) == 1 and "Invalid value for VR UI" in meta["problems"][0]


def test_pydicom_enhanced_functional_groups():
    """liver_1frame.dcm keeps orientation/spacing/position in functional group sequences."""
    meta = volume_meta([bundled("liver_1frame.dcm")])
    assert meta["native"]["spacing"] == pytest.approx([0.810547, 0.810547, 1.0])
    assert meta["native"]["origin"] == pytest.approx([-235.2, -226.8, -128.69])
    assert meta["dtype"] == "bool" and meta["dicom"]["Modality"] == "SEG"


# --- NIfTI and NumPy --------------------------------------------------------------------


def test_nifti_known_affine(tmp_path):
    rot, spacing = rotation(-25, 5), np.array([1.5, 2.0, 3.0])
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rot @ np.diag(spacing) @ np.diag([-1, 1, 1]), [10, -20, 5]
    path = tmp_path / "v.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 5, 6), np.int16), affine), path)
    meta = volume_meta([path])
    assert_plain(meta)
    assert meta["format"] == "nifti" and meta["source_space"] == "right-anterior-superior"
    assert meta["dtype"] == "int16" and meta["native"]["dimensions"] == [4, 5, 6]
    assert meta["native"]["spacing"] == pytest.approx(spacing)
    assert_points_to_ras(meta)
    assert_same_voxels(meta, affine[:3, :3], affine[:3, 3], (4, 5, 6))


def test_nifti_scaling_and_display_range(tmp_path):
    path = tmp_path / "s.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 3, 4), np.int16), np.diag([2.0, 2, 2, 1])), path)
    with open(path, "rb") as fh:  # nibabel resets scl_* on save, so patch the header bytes
        header = nibabel.Nifti1Header.from_fileobj(fh)
    header["scl_slope"], header["scl_inter"] = 2.0, -5.0
    header["cal_min"], header["cal_max"] = -100.0, 300.0
    raw = path.read_bytes()
    path.write_bytes(header.binaryblock + raw[len(header.binaryblock):])
    meta = volume_meta([path])
    assert (meta["rescaleSlope"], meta["rescaleIntercept"]) == (2, -5)
    assert (meta["windowCenter"], meta["windowWidth"]) == (100, 400)
    assert meta["origin"] == [0, 0, 0] and meta["spacing"] == [2, 2, 2]


def test_npy_header_only(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.asfortranarray(np.zeros((4, 5, 6), np.uint16)))
    meta = volume_meta([path])
    assert_plain(meta)
    assert meta["format"] == "npy" and meta["dtype"] == "uint16" and meta["source_space"] is None
    assert meta["npy"] == {"shape": [4, 5, 6], "fortran_order": True}
    assert meta["dimensionsIJK"] == {"x": 4, "y": 5, "z": 6}
    assert meta["directions"] == [1, 0, 0, 0, 1, 0, 0, 0, 1] and meta["origin"] == [0, 0, 0]
    rgb = tmp_path / "rgb.npy"
    np.save(rgb, np.zeros((4, 5, 6, 3), np.uint8))
    assert volume_meta([rgb])["channelsCount"] == 3


# --- garbage ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["g.nrrd", "g.nii", "g.nii.gz", "g.npy", "g.dcm", "no_extension"])
def test_garbled_header_is_bad_input(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00garbage\xff" * 64)
    with pytest.raises(BadInput) as err:
        volume_meta([path])
    assert err.value.path == str(path)


def test_truncated_nrrd_header_is_bad_input(tmp_path):
    good = write_nrrd(tmp_path / "a.nrrd", (3, 4, 5), {"space": "RAS"})
    bad = tmp_path / "t.nrrd"
    bad.write_bytes(good.read_bytes().replace(b"sizes: 3 4 5", b"sizes: 3 x 5"))
    with pytest.raises(BadInput, match="unreadable NRRD header"):
        volume_meta([bad])
    assert volume_meta([good])["dimensionsIJK"] == {"x": 3, "y": 4, "z": 5}
