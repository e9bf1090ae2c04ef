"""input_pipeline/faces: the canonical crop's geometry, the detectors, and the one-face rule."""

import numpy as np
import pytest

from face_photos import HAAR_SEEDS, MTCNN_SEEDS, NO_REAL_FACES, drawn_face, have_real_faces, real_faces, two_faces
from input_pipeline import faces
from input_pipeline.faces import crop, detectors

SIZE = 100


def coordinates_photo(height=256, width=256):
    """A photo whose pixel (row y, column x) holds (x, y, 0): a crop tells where it came from."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8)


def landmarks(eye_centre, distance, angle_degrees, mouth_drop=None):
    """Five landmarks: eyes `distance` apart about `eye_centre`, tilted by the angle, the
    mouth corners `mouth_drop` (default: distance) below the eyes along the face."""
    angle = np.radians(angle_degrees)
    across = np.array([np.cos(angle), np.sin(angle)])
    down = np.array([-np.sin(angle), np.cos(angle)])
    centre = np.asarray(eye_centre, float)
    mouth = centre + (mouth_drop or distance) * down
    return np.array([centre - across * distance / 2, centre + across * distance / 2, centre + 0.5 * distance * down,
                     mouth - across * distance / 3, mouth + across * distance / 3])


def source_of(crop_pixels, x, y):
    """The photo pixel (x, y) that crop pixel (x, y) shows, read off coordinates_photo."""
    return crop_pixels[int(round(y)), int(round(x)), :2].astype(float)


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0])
def test_eyes_land_level_at_the_canonical_place_whatever_the_tilt(angle):
    spec = faces.CropSpec()
    points = landmarks((128, 110), 40, angle)
    out = faces.canonical_crop(coordinates_photo(), faces.Face((0, 0, 1, 1), points, 1.0), spec, SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    eye_row = spec.eye_height * SIZE
    for eye, column in ((points[0], (0.5 - spec.eye_scale / 2) * SIZE), (points[1], (0.5 + spec.eye_scale / 2) * SIZE)):
        # The crop pixel where this eye should be shows the photo pixel of the eye (pixel centres at +0.5).
        np.testing.assert_allclose(source_of(out, column - 0.5, eye_row - 0.5) + 0.5, eye, atol=1.5)


def test_the_larger_of_eye_distance_and_eye_to_mouth_sets_the_scale():
    spec = faces.CropSpec()
    frontal = crop.square(faces.Face((0, 0, 1, 1), landmarks((100, 100), 40, 0), 1.0), spec)
    turned = crop.square(faces.Face((0, 0, 1, 1), landmarks((100, 100), 20, 0, mouth_drop=40), 1.0), spec)
    nodding = crop.square(faces.Face((0, 0, 1, 1), landmarks((100, 100), 40, 0, mouth_drop=20), 1.0), spec)
    assert frontal[2] == pytest.approx(40 / spec.eye_scale)
    assert turned[2] == nodding[2] == pytest.approx(frontal[2])  # A turned or nodding head keeps its size.


def test_a_box_without_landmarks_gives_an_upright_square_around_it():
    spec = faces.CropSpec()
    x, y, side, angle = crop.square(faces.Face((50, 60, 80, 80), None, 1.0), spec)
    assert (x, y, side, angle) == pytest.approx((90, 100 + spec.box_shift * 80, spec.box_scale * 80, 0.0))
    out = faces.canonical_crop(coordinates_photo(), faces.Face((50, 60, 80, 80), None, 1.0), spec, SIZE)
    np.testing.assert_allclose(source_of(out, SIZE / 2, SIZE / 2), (x, y), atol=1.5)


def test_beyond_the_border_is_mid_gray_and_the_rest_is_the_photo():
    face = faces.Face((0, 0, 1, 1), landmarks((20, 20), 40, 0), 1.0)  # Near the top-left corner.
    out = faces.canonical_crop(coordinates_photo(), face, faces.CropSpec(), SIZE)
    assert (out[0, 0] == crop.FILL).all()  # Outside the photo.
    assert (out[-1, -1, 2] == 0).all() and not (out[-1, -1] == crop.FILL).all()  # Inside.


def test_a_big_face_is_shrunk_without_aliasing():
    """An 800-pixel face of 1-pixel stripes comes out as their mean, not as moire."""
    stripes = np.zeros((1200, 1200, 3), np.uint8)
    stripes[:, ::2] = 255
    face = faces.Face((0, 0, 1, 1), landmarks((600, 500), 300, 10), 1.0)
    out = faces.canonical_crop(stripes, face, faces.CropSpec(), SIZE).astype(float)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 8


@pytest.mark.parametrize("source, size", [((1200, 1601), (767, 1024)), ((1024, 1024), (192, 192)),
                                          ((320, 320), (128, 128)), ((600, 700), (500, 583)),
                                          ((2048, 2048), (1024, 1024))])
def test_shrink_averages_as_inter_area_does_and_keeps_the_whole_photos_mapping(source, size):
    import cv2

    rows, columns = np.mgrid[0:source[0], 0:source[1]]
    smooth = ((np.sin(columns / 37) + np.cos(rows / 53)) * 60 + 128).astype(np.uint8)[..., None].repeat(3, 2)
    out = detectors.shrink(smooth, size[1], size[0])
    assert out.shape == (*size, 3) and out.dtype == np.uint8
    area = cv2.resize(smooth, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(float) - area).mean() < 0.3  # The same picture, not shifted...
    if (source[0] // size[0]) % 2 == 0:  # Averaged by an even factor first: 1-pixel stripes become their mean.
        stripes = np.zeros((*source, 3), np.uint8)
        stripes[:, ::2] = 255
        striped = detectors.shrink(stripes, size[1], size[0]).astype(float)
        assert abs(striped.mean() - 127.5) < 3 and striped.std() < 8  # ... nor aliased.


def test_find_maps_back_from_the_shrunk_and_padded_photo():
    """Faces come back in the photo's pixels after the shrink to MAX_DETECT_SIDE, and the
    padded second look happens only when the first finds nothing."""
    calls = []

    def detector(pixels):  # Finds a face only on the padded picture, at its centre.
        calls.append(pixels.shape)
        if len(calls) == 1:
            return []
        h, w = pixels.shape[:2]
        return [faces.Face((w / 2 - 10, h / 2 - 10, 20, 20), np.full((5, 2), [w / 2 - 0.5, h / 2 - 0.5]), 0.9)]

    photo = np.zeros((1000, 2048, 3), np.uint8)
    (found,) = faces.find(photo, detector, padding=0.25)
    shrunk = (500, 1024, 3)
    assert calls == [shrunk, (500 + 2 * 256, 1024 + 2 * 256, 3)]
    np.testing.assert_allclose(found.landmarks, np.full((5, 2), [1024, 500]))  # The photo's centre.
    assert found.box == pytest.approx((1024 - 20, 500 - 20, 40, 40))


def test_haar_finds_drawn_faces_and_one_face_names_what_is_wrong():
    spec = faces.CropSpec(detector="haar")
    for seed in HAAR_SEEDS[:3]:
        face = faces.one_face(np.asarray(drawn_face(seed, 200)), spec)
        assert face.landmarks is None and 60 < face.side < 200
    cases = [(np.full((200, 200, 3), 90, np.uint8), spec, "no_face"),
             (np.asarray(two_faces()), spec, "several_faces"),
             (np.asarray(drawn_face(HAAR_SEEDS[0], 200)), faces.CropSpec(detector="haar", min_face_size=400),
              "face_too_small")]
    for pixels, case_spec, reason in cases:
        with pytest.raises(faces.FaceError) as error:
            faces.one_face(pixels, case_spec)
        assert error.value.reason == reason


def test_mtcnn_gives_five_landmarks_on_a_drawn_face():
    face = faces.one_face(np.asarray(drawn_face(MTCNN_SEEDS[1], 200)), faces.CropSpec(detector="mtcnn"))
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < nose[1] < mouth_left[1]
    assert mouth_left[0] < mouth_right[0]


@pytest.mark.skipif(not have_real_faces(), reason=NO_REAL_FACES)
def test_on_real_faces_the_canonical_crop_puts_the_eyes_where_it_says():
    """MTCNN run again on each canonical crop finds the eyes level, EYE_SCALE apart, at EYE_HEIGHT."""
    from PIL import Image

    spec, size = faces.CropSpec(detector="mtcnn"), 160
    errors = []
    for path, *_ in real_faces(12):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        out = faces.canonical_crop(pixels, faces.one_face(pixels, spec), spec, size)
        again = faces.one_face(out, spec).landmarks / size
        errors.append([again[1, 0] - again[0, 0] - spec.eye_scale, (again[0, 1] + again[1, 1]) / 2 - spec.eye_height,
                       again[1, 1] - again[0, 1], (again[0, 0] + again[1, 0]) / 2 - 0.5])
    assert np.abs(np.median(errors, axis=0)).max() < 0.02, np.round(errors, 3)


def test_the_detector_is_made_once_per_process():
    assert faces.make_detector("haar") is faces.make_detector("haar")
    with pytest.raises(ValueError, match="unknown face detector 'dlib'"):
        detectors.make_detector("dlib")
