"""Video metadata with PyAV, checked against a full decode of tiny videos encoded here."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import av
import msgpack
import pytest

from pvc.errors import BadInput
from pvc.project.video import (
    decode_pts,
    encode_pts,
    frame_times,
    video_annotation_summary,
    video_meta,
)

W, H = 64, 48


# --------------------------------------------------------------------------- helpers


def need_encoder(name: str) -> None:
    try:
        av.codec.Codec(name, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this PyAV's FFmpeg has no {name} encoder")


def make_frame(i: int) -> av.VideoFrame:
    frame = av.VideoFrame(W, H, "yuv420p")
    for k, plane in enumerate(frame.planes):
        plane.update(bytes([(i * 7 + k * 50) % 256]) * plane.buffer_size)
    return frame


def write_video(
    path: Path,
    codec: str,
    n: int = 30,
    *,
    pts_ms: list[int] | None = None,
    first_pts: int = 0,
    rotation: int | None = None,
    container_options: dict | None = None,
) -> Path:
    """Encode `n` frames at 30 fps (or at the given millisecond timestamps) into `path`."""
    need_encoder(codec)
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(n):
            frame = make_frame(i)
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            else:
                frame.pts = first_pts + i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def decoded(path: Path) -> list[av.VideoFrame]:
    """Every frame of the first video stream, fully decoded: the truth to compare with."""
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def assert_matches_decode(meta: dict, path: Path) -> None:
    frames = decoded(path)
    assert meta["frames"] == len(frames)
    assert meta["frames_source"] == "packets"
    assert frame_times(meta) == pytest.approx(sorted(f.time for f in frames), abs=1e-9)
    assert json.loads(json.dumps(meta)) == meta
    assert msgpack.unpackb(msgpack.packb(meta)) == meta


# --------------------------------------------------------------------------- containers

CFR_CASES = [
    ("mp4", "libx264", "h264"),
    ("mp4", "mpeg4", "mpeg4"),
    ("mov", "libx264", "h264"),
    ("mkv", "libx264", "h264"),
    ("webm", "libvpx-vp9", "vp9"),
    ("webm", "libvpx", "vp8"),
    ("avi", "mpeg4", "mpeg4"),
]


@pytest.mark.parametrize(("suffix", "encoder", "codec"), CFR_CASES)
def test_constant_rate_video(tmp_path, suffix, encoder, codec):
    path = write_video(tmp_path / f"v.{suffix}", encoder, n=45)
    meta = video_meta(path)
    assert_matches_decode(meta, path)
    assert (meta["width"], meta["height"], meta["codec"]) == (W, H, codec)
    assert meta["frames"] == 45
    assert meta["pix_fmt"] == "yuv420p"
    assert meta["rotation"] == 0
    assert meta["fps_avg"] == pytest.approx(30, abs=0.05)
    assert meta["fps_base"] == pytest.approx(30)
    assert meta["duration"] == pytest.approx(1.5, abs=0.01)
    # Constant rate is one run, Matroska's millisecond 33/34/33 steps included.
    assert len(meta["pts"]["deltas"]) == 1


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
def test_variable_rate_video(tmp_path, suffix):
    rng = random.Random(7)
    pts_ms = [0]
    for _ in range(59):
        pts_ms.append(pts_ms[-1] + rng.choice([20, 33, 50, 100, 250]))
    path = write_video(tmp_path / f"vfr.{suffix}", "libx264", n=60, pts_ms=pts_ms)
    meta = video_meta(path)
    assert_matches_decode(meta, path)
    assert meta["frames"] == 60
    assert [round(t * 1000) for t in frame_times(meta)] == pts_ms
    assert 1 < len(meta["pts"]["deltas"]) < 60
    assert 1000 / 250 < meta["fps_avg"] < 1000 / 20


@pytest.mark.parametrize("encoder", ["libx264", "mpeg4"])
def test_edit_list_frames_come_from_packets(tmp_path, encoder):
    # Frames with negative pts are cut by an MP4 edit list: the sample table (stream.frames)
    # still counts them, the decoder does not output them, and neither does our packet count.
    path = write_video(tmp_path / "cut.mp4", encoder, n=30, first_pts=-5)
    meta = video_meta(path)
    assert_matches_decode(meta, path)
    assert meta["frames"] == 25
    assert meta["frames_container"] == 30
    assert frame_times(meta)[0] == 0.0


def test_rotation_from_display_matrix(tmp_path):
    path = write_video(tmp_path / "rot.mp4", "libx264", rotation=90)
    meta = video_meta(path)
    assert meta["rotation"] == decoded(path)[0].rotation == 90
    assert (meta["width"], meta["height"]) == (W, H)  # coded size, not display size


def test_fragmented_mp4_has_no_container_count(tmp_path):
    options = {"movflags": "frag_keyframe+empty_moov"}
    path = write_video(tmp_path / "frag.mp4", "libx264", container_options=options)
    meta = video_meta(path)
    assert_matches_decode(meta, path)
    assert meta["frames_container"] is None


# --------------------------------------------------------------------------- unreadable files


def truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def assert_bad(path: Path) -> BadInput:
    with pytest.raises(BadInput) as info:
        video_meta(path)
    assert info.value.path == str(path)
    assert info.value.reason.startswith("not a readable video: ")
    return info.value


def test_truncated_mp4_is_bad_input(tmp_path):
    assert_bad(truncate(write_video(tmp_path / "t.mp4", "libx264"), 0.6))


def test_truncated_faststart_mp4_is_bad_input(tmp_path):
    # The index is at the front and survives; the demuxer alone would just stop early.
    path = write_video(tmp_path / "t.mp4", "libx264", container_options={"movflags": "faststart"})
    assert "truncated" in assert_bad(truncate(path, 0.9)).reason


def test_truncated_mkv_before_first_frame_is_bad_input(tmp_path):
    assert_bad(truncate(write_video(tmp_path / "t.mkv", "libx264"), 0.3))


def test_text_file_named_mp4_is_bad_input(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    assert_bad(path)


def test_empty_and_missing_files_are_bad_input(tmp_path):
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    assert_bad(empty)
    assert_bad(tmp_path / "missing.mp4")


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=800)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    assert "no video stream" in assert_bad(path).reason


# --------------------------------------------------------------------------- pts encoding


def ms_rounded(step: Fraction, n: int, start: int = 0) -> list[int]:
    return [start + (2 * step.numerator * k + step.denominator) // (2 * step.denominator) for k in range(n)]


@pytest.mark.parametrize("step", [Fraction(100, 3), Fraction(1001, 30), Fraction(1001, 24)])
def test_rounded_constant_rate_is_one_run(step):
    stamps = ms_rounded(step, 100_000, start=67)
    encoded = encode_pts(stamps, [step])
    assert encoded == {"start": 67, "deltas": [[[step.numerator, step.denominator], 99_999]]}
    assert decode_pts(encoded) == stamps
    assert len(msgpack.packb(encoded)) < 32


def test_pts_round_trip_sorts_and_stays_exact():
    rng = random.Random(3)
    stamps = [0]
    for _ in range(5000):
        stamps.append(stamps[-1] + rng.choice([33, 34, 40, 0, 1001]))
    shuffled = stamps[:]
    rng.shuffle(shuffled)
    for steps in ([], [Fraction(100, 3)], [Fraction(100, 3), Fraction(1001, 30)]):
        assert decode_pts(encode_pts(shuffled, steps)) == stamps
    assert decode_pts(encode_pts([5])) == [5]
    # A rate change mid-stream is two runs.
    two = ms_rounded(Fraction(100, 3), 300) + [10_000 + 40 * k for k in range(300)]
    assert len(encode_pts(two, [Fraction(100, 3)])["deltas"]) <= 3


def test_frame_times_without_timestamps_is_empty():
    assert frame_times({"pts": None, "time_base": [1, 1000]}) == []


# --------------------------------------------------------------------------- annotation summary


def figure(key: str, obj: str, geometry: str = "rectangle") -> dict:
    return {"key": key, "objectKey": obj, "geometryType": geometry, "geometry": {}}


def annotation(frames_count: int = 10) -> dict:
    return {
        "size": {"height": H, "width": W},
        "description": "",
        "key": "a" * 32,
        "framesCount": frames_count,
        "objects": [
            {"key": "o1", "classTitle": "car", "tags": []},
            {"key": "o2", "classTitle": "car", "tags": []},
            {"key": "o3", "classTitle": "person", "tags": []},
        ],
        "tags": [
            {"name": "daytime", "key": "t1"},
            {"name": "blur", "key": "t2", "frameRange": [2, 4]},
            {"name": "blur", "key": "t3", "frameRange": [6, 9]},
        ],
        "frames": [
            {"index": 0, "figures": [figure("f1", "o1"), figure("f2", "o3", "polygon")]},
            {"index": 3, "figures": [figure("f3", "o1"), figure("f4", "o2"), figure("f5", "o3", "point")]},
            {"index": 9, "figures": []},
        ],
    }


def test_summary_of_a_consistent_annotation():
    summary = video_annotation_summary(annotation(), 10)
    assert summary == {
        "objects": {"car": 2, "person": 1},
        "figures": 5,
        "figures_per_frame_max": 3,
        "frames_with_figures": 2,
        "geometries": {"point": 1, "polygon": 1, "rectangle": 3},
        "tags": ["blur", "daytime"],
        "tags_with_frame_range": 2,
        "problems": [],
    }
    assert json.loads(json.dumps(summary)) == summary


def test_summary_flags_frame_count_mismatch_and_out_of_range():
    ann = annotation(frames_count=12)
    ann["frames"].append({"index": 11, "figures": [figure("f6", "o1"), figure("f7", "ghost")]})
    ann["tags"].append({"name": "late", "frameRange": [8, 11]})
    problems = video_annotation_summary(ann, 10)["problems"]
    assert "framesCount 12 != media frame count 10" in problems
    assert any("2 figure(s) on 1 frame(s) outside [0, 10)" in p and "first index 11" in p for p in problems)
    assert any("objectKey" in p for p in problems)
    assert any("1 tag frameRange" in p for p in problems)


def test_summary_uses_frames_count_when_media_count_unknown():
    ann = annotation(frames_count=5)
    problems = video_annotation_summary(ann, None)["problems"]
    assert any("outside [0, 5) (framesCount)" in p for p in problems)
    assert not any("!=" in p for p in problems)


def test_summary_tolerates_missing_and_malformed_keys():
    summary = video_annotation_summary({"frames": [{"index": "x"}, 7], "objects": "nope"}, 3)
    assert summary["figures"] == 0 and summary["objects"] == {}
    problems = summary["problems"]
    assert "missing framesCount" in problems
    assert "objects is not a list" in problems
    assert "missing tags" in problems
    assert any("2 frames entries" in p for p in problems)
    assert video_annotation_summary([], 3)["problems"] == ["annotation is not a JSON object"]
