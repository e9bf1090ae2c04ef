"""input_pipeline/faces/blazenet.py and blazeface.py: anchors, decoding and merging, and the detector on
drawn and real faces (its landmarks and canonical square against MTCNN's)."""

import threading

import numpy as np
import pytest
from PIL import Image

from face_photos import NO_REAL_FACES, UTKFACE_DEV, drawn_face, have_real_faces, real_faces, two_faces, utkface_dev_photo
from input_pipeline import faces
from input_pipeline.faces import blazeface, blazenet


@pytest.mark.parametrize("name,count", [("short", 896), ("full", 2304)])
def test_anchors_are_the_nets_outputs_cell_centres(name, count):
    net = blazenet.NETS[name]
    centres = blazenet.anchor_centres(net)
    assert centres.shape == (count, 2) and centres.min() > 0 and centres.max() < 1
    first = 1 / (2 * int(np.ceil(net.size / net.strides[0])))
    np.testing.assert_allclose(centres[0], [first, first])
    # The interpreter agrees on the count.
    assert blazenet.blaze_net(name)._make()[0].get_output_details()[0]["shape"][1] == count


def test_decode_reads_boxes_and_keypoints_relative_to_the_anchor():
    anchors = np.array([[0.25, 0.5], [0.75, 0.5]], np.float32)
    regressors = np.zeros((1, 2, 16), np.float32)
    regressors[0, 0, :4] = [12.8, -12.8, 32.0, 64.0]  # Centre moved by (+0.1, -0.1) of 128, box 0.25 x 0.5.
    regressors[0, 0, 4:6] = [-6.4, 0.0]  # First keypoint 0.05 left of the anchor.
    scores = np.array([3.0, -3.0], np.float32)  # Sigmoid 0.95 and 0.05.
    boxes, keypoints, probs = blazenet.decode(regressors, scores, anchors, 128, 0.5)
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0], [0.35 - 0.125, 0.4 - 0.25, 0.35 + 0.125, 0.4 + 0.25], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [0.2, 0.5], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 1], [0.25, 0.5], atol=1e-6)
    assert probs[0] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_weighted_nms_merges_a_cluster_into_its_score_weighted_mean():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keypoints = np.stack([np.full((6, 2), v, np.float32) for v in (0.0, 3.0, 9.0)])
    merged = blazenet.weighted_nms(boxes, keypoints, np.array([0.9, 0.6, 0.7]))
    assert len(merged) == 2
    box, points, score = merged[0]
    np.testing.assert_allclose(box, [0.4, 0.4, 10.4, 10.4], rtol=1e-6)  # 0.6 / 1.5 of the way.
    np.testing.assert_allclose(points, 1.2) and score == pytest.approx(0.9)
    assert merged[1][2] == pytest.approx(0.7)


def test_tiles_cover_the_photo_and_overlap():
    for height, width in [(768, 1024), (320, 320), (500, 2000)]:
        covered = np.zeros((height, width), bool)
        corners = blazeface.tiles(height, width, 320)
        for x, y in corners:
            covered[y:y + 320, x:x + 320] = True
        assert covered.all() and all(x + 320 <= max(width, 320) and y + 320 <= max(height, 320) for x, y in corners)


def test_it_gives_mtcnns_five_landmarks_on_a_drawn_face():
    face = faces.one_face(np.asarray(drawn_face(1, 200)), faces.CropSpec(detector="blazeface"))
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert face.landmarks.shape == (5, 2) and 0.5 <= face.score <= 1
    assert left_eye[0] < nose[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < nose[1] < mouth_left[1]
    np.testing.assert_array_equal(mouth_left, mouth_right)  # The mouth centre stands for both corners.
    with pytest.raises(faces.FaceError) as error:
        faces.one_face(np.asarray(two_faces()), faces.CropSpec(detector="blazeface"))
    assert error.value.reason == "several_faces"


def scene(size=(1600, 1200), seed=0):
    """A plain textured scene with nothing face-like in it (as bench_detect's)."""
    rng = np.random.default_rng(seed)
    grid = np.clip(110 + rng.normal(0, 25, size=(6, 8, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC)


def test_small_faces_of_a_group_photo_are_found_and_a_plain_scene_has_none():
    spec = faces.CropSpec(detector="blazeface")
    picture, places = scene(), [(200, 300), (700, 650), (1250, 250)]
    for seed, place in zip((1, 3, 5), places):
        picture.paste(drawn_face(seed, 160), place)  # Faces of ~85 pixels, ~55 where it looks.
    found, _ = faces.detect(np.asarray(picture), spec)
    centres = sorted((f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2) for f in found)
    assert len(found) == 3, centres
    for (x, y), (cx, cy) in zip(sorted(places), centres):
        assert x < cx < x + 160 and y < cy < y + 160
    assert faces.detect(np.asarray(scene(seed=1)), spec) == ([], [])


def test_it_is_safe_to_share_between_threads():
    pixels = np.asarray(drawn_face(3, 200))
    alone = faces.detect(pixels, faces.CropSpec(detector="blazeface"))[0][0]
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        [faces.detect(pixels, faces.CropSpec(detector="blazeface"))[0][0] for _ in range(5)])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for face in sum(results, []):
        np.testing.assert_allclose(face.landmarks, alone.landmarks, atol=1e-4)


@pytest.mark.skipif(not have_real_faces(), reason=NO_REAL_FACES)
def test_on_real_faces_its_landmarks_and_square_are_mtcnns_within_a_few_pixels():
    """20 real 200x200 faces: eyes within a few pixels of MTCNN's, the canonical square within
    a few hundredths of its side (the crop frames a face alike whichever detector ran)."""
    eye_errors, squares = [], []
    spec = faces.CropSpec()
    for path, *_ in real_faces(20):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        ours = faces.one_face(pixels, faces.CropSpec(detector="blazeface"))
        theirs = faces.one_face(pixels, faces.CropSpec(detector="mtcnn"))
        eye_errors.append(np.hypot(*(ours.landmarks[:2] - theirs.landmarks[:2]).T))
        (x, y, side, angle), (rx, ry, rside, rangle) = faces.square(ours, spec), faces.square(theirs, spec)
        squares.append([(x - rx) / rside, (y - ry) / rside, side / rside - 1, np.degrees(angle - rangle)])
    eye_errors, squares = np.array(eye_errors), np.array(squares)
    assert np.median(eye_errors) < 6 and np.percentile(eye_errors, 90) < 12, np.round(eye_errors, 1)
    median = np.median(squares, axis=0)
    assert np.abs(median[:3]).max() < 0.03 and abs(median[3]) < 2, np.round(squares, 3)


def test_a_doubtful_detection_within_a_surer_bigger_face_is_not_a_second_face():
    face = (np.array([0.0, 0, 200, 200]), None, 0.89)
    beard = (np.array([60.0, 100, 150, 190]), None, 0.57)  # Its centre inside the face, under half its size.
    neighbour = (np.array([160.0, 0, 260, 100]), None, 0.57)  # Its centre outside.
    assert blazeface.within_a_surer_face(beard, [face, beard])
    assert not blazeface.within_a_surer_face(neighbour, [face, neighbour])
    assert not blazeface.within_a_surer_face((beard[0], None, 0.8), [face, beard])  # Sure faces stay.
    assert not blazeface.within_a_surer_face(face, [face, beard])
    frame = (np.array([0.0, 0, 200, 200]), None, 0.68)  # A doubtful frame: no sure face to be within.
    assert not blazeface.within_a_surer_face((beard[0], None, 0.62), [frame, (beard[0], None, 0.62)])


@pytest.mark.parametrize("name", ["27_0_3_20170119194354476",  # Sunglasses: each lens a "face" at 0.56-0.72.
                                  "34_0_1_20170113155128778"])  # A beard taken for a second face at 0.57.
def test_a_face_that_fills_its_photo_is_one_face(name):
    path = utkface_dev_photo(name)
    if path is None:
        pytest.skip(f"the real-face folder {UTKFACE_DEV} is absent (it is never part of the repository)")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    (face,) = faces.detect(pixels, faces.CropSpec(detector="blazeface"))[0]
    assert face.side > 150  # The whole face, of a 200-pixel photo.
