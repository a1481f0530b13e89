"""Per-item volume metadata (NRRD, DICOM, NIfTI, .npy) from headers only, never voxels.

A plain dict (str/int/float/bool/None/list/dict) in Supervisely's `volumeMeta` vocabulary, so
a version records geometry without decoding, or rewriting, the user's bytes. Matrices are
flattened row-major.
- `directions`: a 3x3 whose *columns* are the unit vectors of the i, j, k axes (ITK's
  `GetDirection()`, as the SDK stores it): world = directions @ (spacing * ijk) + origin, with
  `origin` the centre of voxel (0, 0, 0).
- `IJK2WorldMatrix`: built like the SDK's `compose_ijk_2_world_mat`, M[:3,:3] =
  (directions * spacing).T, M[:3,3] = origin, so its 3x3 holds one index axis per *row* (the
  NRRD `space directions` layout the SDK's `_create_volume_header` reads back). It equals the
  column-vector affine when `directions` is diagonal (axis-aligned scans); in general
  world = M[:3,:3].T @ ijk + M[:3,3].
- RAS normalisation: the file's geometry is taken to RAS world (LPS->RAS negates world *rows*
  x and y), then index axes are permuted/flipped to point closest to +R, +A, +S. The raw
  geometry stays under `native`; `axis_map[w] = [native_axis, flipped]` per RAS index axis w.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pvc.errors import BadInput, PvcError, UsageError
from pvc.record import record

__all__ = ["DEFAULT_DICOM_TAGS", "volume_meta", "nrrd_meta", "nifti_meta", "npy_meta",
           "group_dicom_series", "dicom_series_meta"]  # fmt: skip

DEFAULT_DICOM_TAGS: tuple[str, ...] = (
    "Modality", "SeriesInstanceUID", "StudyInstanceUID", "Rows", "Columns", "PixelSpacing",
    "SliceThickness", "ImageOrientationPatient", "PhotometricInterpretation",
)  # fmt: skip

RAS, LAS, LPS = "right-anterior-superior", "left-anterior-superior", "left-posterior-superior"
_ANATOMICAL = {"ras": RAS, RAS: RAS, "las": LAS, LAS: LAS, "lps": LPS, LPS: LPS}
_SIGNS_TO_RAS = {RAS: (1.0, 1.0, 1.0), LAS: (-1.0, 1.0, 1.0), LPS: (-1.0, -1.0, 1.0)}
_NON_ANATOMICAL = ("scanner-xyz", "3d-right-handed", "3d-left-handed")
_NRRD_SPATIAL_KINDS = ("domain", "space", "???", "none")
_NRRD_TYPE_ALIASES = {  # every spelling the NRRD spec allows for `type`
    "int8": "signed char|int8|int8_t", "uint8": "uchar|unsigned char|uint8|uint8_t",
    "int16": "short|short int|signed short|signed short int|int16|int16_t",
    "uint16": "ushort|unsigned short|unsigned short int|uint16|uint16_t",
    "int32": "int|signed int|int32|int32_t", "uint32": "uint|unsigned int|uint32|uint32_t",
    "int64": "longlong|long long|long long int|signed long long|signed long long int|int64|int64_t",
    "uint64": "ulonglong|unsigned long long|unsigned long long int|uint64|uint64_t",
    "float32": "float", "float64": "double",
}  # fmt: skip
_NRRD_TYPES = {a: name for name, aliases in _NRRD_TYPE_ALIASES.items() for a in aliases.split("|")}


@record(frozen=True)
class _Geometry:
    """Index->world mapping in one world space: world = directions @ (spacing * ijk) + origin."""

    space: str | None
    directions: np.ndarray  # 3x3, columns = unit vectors of the i, j, k axes
    spacing: np.ndarray  # (3,)
    origin: np.ndarray  # (3,)
    dims: tuple[int, int, int]


def _from_axes(space: str | None, axes: np.ndarray, origin: Any, dims: Sequence[int]) -> _Geometry:
    """Split a 3x3 whose columns are the scaled index axes into unit directions and spacing."""
    spacing = np.linalg.norm(axes, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        directions = axes / spacing
    dims3 = (int(dims[0]), int(dims[1]), int(dims[2]))
    return _Geometry(space, directions, spacing, np.asarray(origin, float), dims3)


def _check(path: Path, geom: _Geometry) -> None:
    """Refuse geometry no volume can have: non-finite numbers, zero spacing, collinear axes."""
    values = np.concatenate([geom.directions.ravel(), geom.spacing, geom.origin])
    if not np.all(np.isfinite(values)) or np.any(geom.spacing <= 0) or min(geom.dims) < 1:
        raise BadInput(path, "header geometry has zero sizes/spacing or non-finite numbers")
    if abs(np.linalg.det(geom.directions)) < 1e-6:
        raise BadInput(path, "header direction vectors are degenerate (collinear axes)")


def _to_ras(geom: _Geometry) -> _Geometry:
    """Express the geometry in RAS world: a space flip negates world rows (and the origin)."""
    signs = np.array(_SIGNS_TO_RAS.get(geom.space or "", (1.0, 1.0, 1.0)))
    directions = signs[:, None] * geom.directions
    return _Geometry(RAS, directions, geom.spacing, signs * geom.origin, geom.dims)


def _orient_ras(geom: _Geometry) -> tuple[_Geometry, list[list[Any]]]:
    """Permute/flip index axes of a RAS geometry so i, j, k point closest to +R, +A, +S.

    As in nibabel's io_orientation and ITK's DICOMOrient, each index axis goes to the world axis
    it is most aligned with (largest |cosine|; the strongest pair is settled first, so near-45
    degree ties resolve the same way whatever the axis order). An oblique scan thus keeps a
    rotation close to the identity; the origin moves to the voxel that becomes index (0, 0, 0)
    and sizes/spacing follow their axes.
    """
    cosines = np.abs(geom.directions)
    perm = [0, 0, 0]  # perm[world axis] = native index axis
    for _ in range(3):
        world, axis = np.unravel_index(np.argmax(cosines), cosines.shape)
        perm[int(world)] = int(axis)
        cosines[world, :] = -1.0
        cosines[:, axis] = -1.0
    flips = [bool(geom.directions[w, perm[w]] < 0) for w in range(3)]
    first = np.zeros(3)  # native index of the voxel that becomes (0, 0, 0)
    first[perm] = [geom.dims[a] - 1 if flip else 0 for a, flip in zip(perm, flips)]
    origin = geom.directions @ (geom.spacing * first) + geom.origin
    columns = [(-1.0 if flips[w] else 1.0) * geom.directions[:, perm[w]] for w in range(3)]
    dims = (geom.dims[perm[0]], geom.dims[perm[1]], geom.dims[perm[2]])
    oriented = _Geometry(RAS, np.column_stack(columns), geom.spacing[perm], origin, dims)
    return oriented, [[perm[w], flips[w]] for w in range(3)]


def _floats(values: Any) -> list[float]:
    """Plain floats, rounded to 1e-9 (nanometres for mm) so float noise cannot change a version."""
    return [round(float(v), 9) + 0.0 for v in np.ravel(values)]


def _assemble(path: Path, fmt: str, dtype: str, native: _Geometry, channels: int,
              problems: list[str], extra: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The `volumeMeta`-style dict: RAS-normalised geometry, raw geometry under `native`."""
    _check(path, native)
    ras, axis_map = _orient_ras(_to_ras(native))
    matrix = np.eye(4)
    matrix[:3, :3] = (ras.directions * ras.spacing).T  # as the SDK's compose_ijk_2_world_mat
    matrix[:3, 3] = ras.origin
    native_dict = {
        "space": native.space, "directions": _floats(native.directions),
        "origin": _floats(native.origin), "spacing": _floats(native.spacing),
        "dimensions": list(native.dims), "axis_map": axis_map,
    }  # fmt: skip
    return {
        "format": fmt, "dtype": dtype, "source_space": native.space, "ACS": "RAS",
        "dimensionsIJK": dict(zip("xyz", ras.dims)), "spacing": _floats(ras.spacing),
        "origin": _floats(ras.origin), "directions": _floats(ras.directions),
        "IJK2WorldMatrix": _floats(matrix), "channelsCount": int(channels),
        "rescaleSlope": 1.0, "rescaleIntercept": 0.0,  # the SDK's defaults; readers override
        "native": native_dict, "problems": problems, **extra,
    }  # fmt: skip


@contextmanager
def _reading(path: Path, what: str, problems: list[str]) -> Iterator[None]:
    """Run a third-party reader: its errors become BadInput, its UserWarnings `problems`.

    A library's warnings about a user's file (bad VR values, odd fields) are findings about
    that item, so they are kept with it; other categories (deprecations) concern pvc and are
    re-issued unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        except (PvcError, Warning):
            raise
        except Exception as exc:  # the readers raise many unrelated types on garbage
            raise BadInput(path, f"unreadable {what} header: {exc}") from exc
    for w in caught:
        if issubclass(w.category, UserWarning):
            problems.append(f"{path.name}: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _space(path: Path, space: str | None, problems: list[str]) -> str | None:
    """Canonical NRRD space name; non-anatomical spaces are kept but read as RAS (noted)."""
    if space is None:
        return None
    key = space.strip().lower()
    if key in _ANATOMICAL:
        return _ANATOMICAL[key]
    if key in _NON_ANATOMICAL:
        problems.append(f"{path.name}: space {space!r} has no anatomical orientation; read as RAS")
        return key
    raise BadInput(path, f"unsupported NRRD space {space!r} (3-D RAS/LAS/LPS or scanner-xyz only)")


def nrrd_meta(path: Path) -> dict[str, Any]:
    """Metadata of one NRRD (or detached .nhdr) from `nrrd.read_header`."""
    import nrrd

    problems: list[str] = []
    with _reading(path, "NRRD", problems), open(path, "rb") as fh:
        header = nrrd.read_header(fh)
    sizes = [int(n) for n in np.atleast_1d(header.get("sizes", []))]
    dtype = _NRRD_TYPES.get(str(header.get("type", "")).strip().lower())
    if not sizes or dtype is None:
        raise BadInput(path, f"NRRD without sizes or of unsupported type {header.get('type')!r}")
    space = _space(path, header.get("space"), problems)
    spatial = _nrrd_spatial_axes(header, len(sizes))
    if len(spatial) > 3 or (len(spatial) < 3 and "space directions" in header):
        raise BadInput(path, f"NRRD has {len(spatial)} spatial axes; a volume needs 3")
    channels = math.prod(sizes[a] for a in range(len(sizes)) if a not in spatial)
    if "space directions" in header:
        axes = np.asarray(header["space directions"], float)[spatial].T  # pynrrd: row per axis
        origin = np.asarray(header.get("space origin", np.zeros(3)), float)
        origin = np.where(np.isfinite(origin), origin, 0.0)
        if axes.shape != (3, 3) or origin.shape != (3,):
            raise BadInput(path, "NRRD space dimension must be 3")
        native = _from_axes(space, axes, origin, [sizes[a] for a in spatial])
    else:  # no world frame: per-axis `spacings` if any, identity directions, zero origin
        spacings = np.asarray(header.get("spacings", np.ones(len(sizes))), float)
        steps = [spacings[a] if np.isfinite(spacings[a]) else 1.0 for a in spatial]
        dims = [sizes[a] for a in spatial]
        pad = 3 - len(spatial)
        native = _from_axes(space, np.diag(steps + [1.0] * pad), np.zeros(3), dims + [1] * pad)
    return _assemble(path, "nrrd", dtype, native, channels, problems, {})


def _nrrd_spatial_axes(header: dict[str, Any], ndim: int) -> list[int]:
    """Spatial axes: those with a `space directions` vector, else by `kinds`, else all."""
    if "space directions" in header:
        rows = np.asarray(header["space directions"], float)
        return [a for a in range(ndim) if np.all(np.isfinite(rows[a]))]
    kinds = header.get("kinds")
    if kinds:
        return [a for a in range(ndim) if str(kinds[a]).lower() in _NRRD_SPATIAL_KINDS]
    return list(range(ndim))


def nifti_meta(path: Path) -> dict[str, Any]:
    """Metadata of a .nii/.nii.gz from its nibabel header (world already RAS).

    Dimensions past the third (time, vector components) are counted as channels.
    """
    import nibabel

    problems: list[str] = []
    with _reading(path, "NIfTI", problems):
        image = nibabel.load(str(path))  # lazy: header + array proxy, no voxels read
        header = image.header
        affine = np.asarray(header.get_best_affine(), float)
        shape = [int(n) for n in header.get_data_shape()]
        dtype = np.dtype(header.get_data_dtype()).name
        # nibabel moves scl_slope/scl_inter from the header onto the proxy at load time
        slope, inter = float(image.dataobj.slope), float(image.dataobj.inter)
        cal_min, cal_max = float(header["cal_min"]), float(header["cal_max"])
    if not shape:
        raise BadInput(path, "NIfTI header has no dimensions")
    dims = (shape[:3] + [1, 1])[:3]
    native = _from_axes(RAS, affine[:3, :3], affine[:3, 3], dims)
    extra: dict[str, Any] = {"rescaleSlope": slope, "rescaleIntercept": inter}
    if cal_max > cal_min:
        extra.update(windowCenter=(cal_min + cal_max) / 2, windowWidth=cal_max - cal_min)
    return _assemble(path, "nifti", dtype, native, math.prod(shape[3:]), problems, extra)


def npy_meta(path: Path) -> dict[str, Any]:
    """Metadata of a .npy indexed [x, y, z(, channel)] from its header: identity geometry."""
    fmt = np.lib.format
    problems: list[str] = []
    with _reading(path, "NumPy", problems), open(path, "rb") as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise BadInput(path, f"unsupported .npy format version {version}")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read(fh)
    if not 2 <= len(shape) <= 4:
        raise BadInput(path, f".npy array of shape {list(shape)} is not a volume")
    dims = (list(shape[:3]) + [1])[:3]
    native = _from_axes(None, np.eye(3), np.zeros(3), dims)
    channels = shape[3] if len(shape) == 4 else 1
    extra = {"npy": {"shape": [int(n) for n in shape], "fortran_order": bool(fortran_order)}}
    return _assemble(path, "npy", np.dtype(dtype).name, native, channels, problems, extra)


# --- DICOM -------------------------------------------------------------------------------


def _read_dicom(path: Path, problems: list[str]) -> Any:
    """A DICOM header without pixel data, every element decoded now so its warnings are caught."""
    import pydicom

    with _reading(path, "DICOM", problems):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ds.walk(lambda _ds, _elem: None)  # convert raw elements (and nested sequences) here
    return ds


def group_dicom_series(paths: list[Path]) -> dict[str, list[Path]]:
    """Group DICOM files by SeriesInstanceUID (paths sorted); non-DICOM files raise BadInput."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(Path(p) for p in paths):
        uid = _read_dicom(path, []).get("SeriesInstanceUID")  # warnings resurface in the meta
        if not uid:
            raise BadInput(path, "DICOM file has no SeriesInstanceUID")
        groups.setdefault(str(uid), []).append(path)
    return groups


def _find(ds: Any, keyword: str, group: str) -> Any:
    """A value from the dataset, else from its shared (or first per-frame) functional `group`."""
    if keyword in ds:
        return ds[keyword].value
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(groups) or []
        if items and items[0].get(group) and keyword in items[0][group][0]:
            return items[0][group][0][keyword].value
    return None


def _frame_positions(ds: Any, normal: np.ndarray) -> list[Any] | None:
    """Per-frame positions of a multi-frame file (functional groups or GridFrameOffsetVector)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame:
        found = [f.get("PlanePositionSequence") for f in per_frame]
        if all(found):
            return [p[0].get("ImagePositionPatient") for p in found]
    offsets = ds.get("GridFrameOffsetVector")
    position = ds.get("ImagePositionPatient")
    if offsets is not None and position is not None:
        start = np.asarray(position, float)
        offsets = [float(v) for v in np.atleast_1d(offsets)]
        return [start + (off - offsets[0]) * normal for off in offsets]
    return None


def _plane(path: Path, ds: Any, problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index frame (columns: along a row, down a column, slice normal) and the unit normal."""
    iop = _find(ds, "ImageOrientationPatient", "PlaneOrientationSequence")
    if iop is None:
        problems.append(f"{path.name}: no ImageOrientationPatient; identity orientation assumed")
        iop = [1, 0, 0, 0, 1, 0]
    row, col = np.resize(np.asarray(iop, float), 6).reshape(2, 3)
    normal = np.cross(row, col)
    if np.size(iop) != 6 or np.linalg.norm(normal) < 1e-6:
        raise BadInput(path, f"ImageOrientationPatient {iop} is not two direction vectors")
    normal /= np.linalg.norm(normal)
    return np.column_stack([row / np.linalg.norm(row), col / np.linalg.norm(col), normal]), normal


def _slices(paths: list[Path], datasets: list[Any], normal: np.ndarray,
            problems: list[str]) -> tuple[list[str], np.ndarray, list[int] | None]:  # fmt: skip
    """Labels and positions of every slice (each file, or each frame of one multi-frame file)."""
    frames = int(datasets[0].get("NumberOfFrames") or 0) or len(
        datasets[0].get("PerFrameFunctionalGroupsSequence") or [None]
    )
    if len(paths) == 1 and frames > 1:
        positions = _frame_positions(datasets[0], normal)
        positions = positions if positions is not None and len(positions) == frames else None
        labels, frame_ids = [paths[0].name] * frames, list(range(frames))
    else:
        if any(int(ds.get("NumberOfFrames") or 1) > 1 for ds in datasets):
            raise BadInput(paths[0], "a series of several multi-frame files is not supported")
        positions = [_find(d, "ImagePositionPatient", "PlanePositionSequence") for d in datasets]
        labels, frame_ids = [p.name for p in paths], None
    if positions is None or any(p is None for p in positions):
        problems.append(f"{paths[0].name}: no ImagePositionPatient; slices stacked from 0")
        thickness = float(_find(datasets[0], "SliceThickness", "PixelMeasuresSequence") or 1.0)
        positions = [i * thickness * normal for i in range(len(labels))]
    return labels, np.asarray([np.asarray(p, float) for p in positions]), frame_ids


def _slice_step(path: Path, ds: Any, ordered: np.ndarray, normal: np.ndarray,
                problems: list[str]) -> float:  # fmt: skip
    """Spacing along the normal: median gap between ordered positions; odd gaps are flagged."""
    if len(ordered) == 1:
        return float(_find(ds, "SliceThickness", "PixelMeasuresSequence") or 1.0)
    gaps = np.diff(ordered @ normal)
    step = float(np.median(gaps))
    if step <= 1e-6:
        raise BadInput(path, "DICOM slices share one position; they do not form a volume")
    if np.any(gaps <= 1e-6):
        problems.append("duplicate slice positions")
    elif not np.allclose(gaps, step, rtol=1e-3, atol=1e-3):
        problems.append(f"unequal slice gaps {min(gaps):.4g}..{max(gaps):.4g} mm, used {step:.4g}")
    offsets = ordered - ordered[0]
    drift = offsets - np.outer(offsets @ normal, normal)
    if np.max(np.linalg.norm(drift, axis=1)) > 1e-2:
        problems.append("slice positions drift off the slice normal (gantry tilt?)")
    return step


def dicom_series_meta(
    paths: list[Path], tags: Sequence[str] = DEFAULT_DICOM_TAGS
) -> dict[str, Any]:
    """Metadata of one DICOM series (several files, or one single-/multi-frame file).

    Slices are ordered by projecting ImagePositionPatient onto the slice normal (row x column
    cosines); the native frame is LPS with i along a row, j down the columns, k along the normal.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise UsageError("a DICOM series needs at least one file")
    problems: list[str] = []
    datasets = [_read_dicom(p, problems) for p in paths]
    for path, ds in zip(paths, datasets):
        if ds.get("SeriesInstanceUID") != datasets[0].get("SeriesInstanceUID"):
            raise BadInput(path, "file belongs to another DICOM series than its companions")
        if [ds.get("Rows"), ds.get("Columns")] != [datasets[0].get(k) for k in ("Rows", "Columns")]:
            raise BadInput(path, "slice size differs from the rest of the series")
    directions, normal = _plane(paths[0], datasets[0], problems)
    for path, ds in zip(paths[1:], datasets[1:]):
        if not np.allclose(_plane(path, ds, [])[0], directions, atol=1e-4):
            raise BadInput(path, "slice orientation differs from the rest of the series")
    labels, positions, frame_ids = _slices(paths, datasets, normal, problems)
    order = sorted(range(len(labels)), key=lambda n: (float(positions[n] @ normal), labels[n], n))
    first = datasets[order[0]] if frame_ids is None else datasets[0]
    step = _slice_step(paths[0], first, positions[order], normal, problems)
    pixel = _find(first, "PixelSpacing", "PixelMeasuresSequence") or [1.0, 1.0]
    spacing = [float(pixel[1]), float(pixel[0]), step]  # PixelSpacing: [row gap, column gap]
    dims = (int(first.get("Columns") or 1), int(first.get("Rows") or 1), len(labels))
    native = _Geometry(LPS, directions, np.asarray(spacing), positions[order[0]], dims)
    extra = {**_dicom_intensity(first), "dicom": _export_tags(first, tags), "slices": len(labels)}
    if frame_ids is None:
        extra["slice_order"] = [labels[n] for n in order]
    else:
        extra.update(slice_order=[paths[0].name], frame_order=[frame_ids[n] for n in order])
    channels = int(first.get("SamplesPerPixel") or 1)
    return _assemble(paths[0], "dicom", _dicom_dtype(first), native, channels, problems, extra)


def _dicom_dtype(ds: Any) -> str:
    """Stored pixel type from BitsAllocated/PixelRepresentation (headers only, no pixel data)."""
    bits, signed = int(ds.get("BitsAllocated") or 16), ds.get("PixelRepresentation") == 1
    return "bool" if bits == 1 else f"{'int' if signed else 'uint'}{bits}"


def _dicom_intensity(ds: Any) -> dict[str, float]:
    """Rescale (RescaleSlope/Intercept, else RTDOSE DoseGridScaling) and the first VOI window."""
    found = {
        "rescaleSlope": _find(ds, "RescaleSlope", "PixelValueTransformationSequence"),
        "rescaleIntercept": _find(ds, "RescaleIntercept", "PixelValueTransformationSequence"),
        "windowCenter": _find(ds, "WindowCenter", "FrameVOILUTSequence"),
        "windowWidth": _find(ds, "WindowWidth", "FrameVOILUTSequence"),
    }
    if found["rescaleSlope"] is None:
        found["rescaleSlope"] = ds.get("DoseGridScaling")
    return {  # a multi-valued window (several presets) keeps its first value
        key: float(np.ravel(np.asarray(value, float))[0])
        for key, value in found.items()
        if value is not None and value != ""
    }


def _export_tags(ds: Any, keywords: Sequence[str]) -> dict[str, Any]:
    """The requested tags (by DICOM keyword) that the file has, as plain JSON values."""
    from pydicom.datadict import tag_for_keyword

    out: dict[str, Any] = {}
    for keyword in keywords:
        if tag_for_keyword(keyword) is None:
            raise UsageError(f"unknown DICOM keyword {keyword!r}")
        if keyword in ds:
            out[keyword] = _plain(ds[keyword].value)
    return out


def _plain(value: Any) -> Any:
    """A pydicom value as str/int/float/None/list/dict; binary payloads become None."""
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence as DicomSequence

    if isinstance(value, DicomSequence):
        return [{e.keyword or str(e.tag): _plain(e.value) for e in item} for item in value]
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


# --- dispatch ----------------------------------------------------------------------------


_SUFFIX_READERS = {".nrrd": nrrd_meta, ".nhdr": nrrd_meta, ".nii": nifti_meta,
                   ".nii.gz": nifti_meta, ".npy": npy_meta}  # fmt: skip


def volume_meta(
    paths: list[Path], *, dicom_tags: Sequence[str] = DEFAULT_DICOM_TAGS
) -> dict[str, Any]:
    """Header-only metadata of one volume: one NRRD/NIfTI/.npy/DICOM file, or a DICOM series.

    The reader is chosen by file name; anything else (`.dcm`, no or odd extension) is DICOM.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise UsageError("volume_meta needs at least one file")
    readers = [next((r for s, r in _SUFFIX_READERS.items() if p.name.lower().endswith(s)), None)
               for p in paths]  # fmt: skip
    if len(paths) == 1 and readers[0] is not None:
        return readers[0](paths[0])
    for path, reader in zip(paths, readers):
        if reader is not None:
            raise BadInput(path, "only DICOM volumes span several files")
    return dicom_series_meta(paths, dicom_tags)
