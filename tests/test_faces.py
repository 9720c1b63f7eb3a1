"""The patient's face (modeling_ecmc/faces_ecmc.py and `ECMCProcessor(face_crop=True)`) on real
photographed faces in real H.264 clips decoded by decord: found in the sampled frames with IoU >= 0.5
against hand-drawn boxes, one person and two in view (the patient's track chosen); a clip with no
face gets its video marked missing, never a made-up face."""

import numpy as np
import pytest

from face_fixtures import photo_scene, write_mp4
from modeling_ecmc.faces_ecmc import FaceBox, crop_faces, face_track, fill_from_nearest, link_tracks
from modeling_ecmc.media_ecmc import load_video_frames

NUM_FRAMES = 16


def _measure(frames, truth):
    """(fraction of frames where the detector found the patient, fraction with IoU >= 0.5 after the
    track's gaps are filled) over the sampled frames."""
    boxes = face_track(frames)
    found = sum(b is not None for b in boxes) / len(boxes)
    filled = fill_from_nearest(boxes)
    hits = sum(b is not None and b.iou(FaceBox(*t)) >= 0.5 for b, t in zip(filled, truth)) / len(boxes)
    return found, hits


@pytest.mark.parametrize("two_people", [False, True], ids=["one person", "two in view"])
def test_real_faces_found_in_decoded_clips(two_people, tmp_path):
    frames, truth = photo_scene(30, two_people=two_people)
    clip = write_mp4(tmp_path / "scene.mp4", frames, fps=10)  # 3 s
    sampled = load_video_frames(clip, None, None, NUM_FRAMES)
    index = np.linspace(0, len(frames) - 1, NUM_FRAMES).round().astype(int)  # decord's uniform sampling
    found, hits = _measure(sampled, [truth[i] for i in index])
    print(f"{'two in view' if two_people else 'one person'}: patient found in {found:.0%} of sampled frames, "
          f"IoU >= 0.5 in {hits:.0%}")
    assert found >= 0.95 and hits >= 0.95


def test_the_patients_track_beats_a_brief_false_detection():
    big = [FaceBox(100, 100, 200, 200)]
    detections = [list(big) for _ in range(8)]
    detections[3] = [FaceBox(300, 20, 420, 140)] + big  # a larger false face in one frame only
    tracks = link_tracks(detections)
    assert sorted(len(t) for t in tracks) == [1, 8]
    gaps = [big[0], None, None, FaceBox(110, 100, 210, 200)]
    assert fill_from_nearest(gaps) == [big[0], big[0], FaceBox(110, 100, 210, 200), FaceBox(110, 100, 210, 200)]


def test_crop_is_a_padded_square_inside_the_frame():
    frames = np.zeros((2, 100, 160, 3), np.uint8)
    frames[:, 10:30, 140:160] = 255  # a "face" at the right edge
    crops = crop_faces(frames, [FaceBox(140, 10, 160, 30), None], margin=0.5)
    assert crops.shape == (2, 40, 40, 3)  # 20 px + 50 % each side; moved left to fit, not shrunk
    assert crops[1].tolist() == crops[0].tolist()  # the frame without a box used the nearest one
    assert crop_faces(frames, [None, None]) is None


def test_processor_crops_faces_and_masks_a_faceless_video(tmp_path):
    from transformers import AutoTokenizer, VideoMAEImageProcessor, Wav2Vec2FeatureExtractor

    from modeling_ecmc.presets import load_llm_tokenizer, minilm_path
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    processor = ECMCProcessor(VideoMAEImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}),
                              Wav2Vec2FeatureExtractor(sampling_rate=16000), load_llm_tokenizer(),
                              AutoTokenizer.from_pretrained(minilm_path()), num_frames=NUM_FRAMES, face_crop=True,
                              min_seconds=0)
    frames, _ = photo_scene(30)
    face = write_mp4(tmp_path / "face.mp4", frames)
    blank = write_mp4(tmp_path / "blank.mp4", np.full((30, 120, 160, 3), 90, np.uint8))
    with pytest.warns(UserWarning, match=r"utterance 1 \(.*blank.mp4\): no face in any of the 16 sampled frames"):
        out = processor(videos=[str(face), str(blank)], transcripts=["I am fine.", "Hello."])
    assert out["modality_mask"][:, 0].tolist() == [True, False]
    assert tuple(out["pixel_values_videos"].shape) == (2, NUM_FRAMES, 3, 64, 64)
    processor.save_pretrained(tmp_path / "saved")
    assert ECMCProcessor.from_pretrained(tmp_path / "saved").face_crop is True
