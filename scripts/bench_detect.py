"""Benchmarks the face detectors side by side: how many faces each finds, how fast, and
whether they frame a face the same way.

    python scripts/bench_detect.py                       # ../shared/realfaces_dev/images, 300 photos
    python scripts/bench_detect.py --photos=1162 --detectors=blazeface,mtcnn

Each detector runs as the build and prediction run it (faces.detect: the photo shrunk to
1,024 pixels, looked at again padded when nothing is found) on the same photos, each a
photo of one face, in several settings:
    as_is        the photos as they are (UTKFace's: the face fills the picture)
    scene_10     pasted into a plain textured scene covering 10% of its area (2% and 1%
                 too: scene_2, scene_1), the scene at most 2,048 pixels
    rotated_20   turned in-plane by 20 degrees (also 40)
    zoomed       the middle 70% of the photo: a face cut by every border
    cut_side     the left 65% of the photo: a face cut by one border
    group_12     a group photo: this photo and the next 11, 120 pixels a side each, on a
                 4x3 grid in a 1,600x1,200 scene (shrunk to 1,024 for detection: faces of
                 ~60 pixels)
For each: found (the share of faces with a detection of at least --min_face_size pixels
and a quarter of the face photo's side whose centre lies in the middle half of that photo,
wherever it is in the picture: UTKFace's faces are centred, and fill half of their photo or
more, so the photos must be such faces; several there count once), extra (detections
elsewhere, or more than one), and photos/s of one thread. Then, on the as_is photos both found, how far each
detector's canonical square (input_pipeline/faces/crop.py) lies from --reference's: the
centre's offset and the side's ratio (medians and 10-90% ranges), and the angle. Prints
`<detector>/<reference> photos/s: X.XX` and found rates last.

No photos folder: drawn faces (input_pipeline/sources/synthetic_face), which only shows the
script runs: real photos give the figures (BENCHMARKS.md).
"""

import glob
import os
import time

import numpy as np
from absl import app, flags
from PIL import Image

from experiments import degradations
from input_pipeline import faces, photo
from input_pipeline.sources import synthetic_face

flags.DEFINE_string("photos_dir", "../shared/realfaces_dev/images", "Photos of one face each (JPEG or PNG).")
flags.DEFINE_integer("photos", 300, "Photos per setting (the first, in name order).", lower_bound=1)
flags.DEFINE_list("detectors", list(faces.DETECTORS), f"Detectors to compare, of {faces.DETECTORS}.")
flags.DEFINE_list("settings", ["as_is", "scene_10", "scene_2", "scene_1", "rotated_20", "rotated_40", "zoomed",
                               "cut_side", "group_12"], "Settings (see the module docstring).")
flags.DEFINE_string("reference", "mtcnn", "The detector the others' framing is compared with.")
flags.DEFINE_integer("min_face_size", faces.CropSpec.min_face_size, "Smallest face counted, in photo pixels.")
FLAGS = flags.FLAGS


def load_photos(folder, count):
    """[(name, PIL image)]: the first `count` photos of `folder`, or drawn faces."""
    paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith((".jpg", ".jpeg", ".png")))
    if not paths:
        print(f"no photos in {folder!r}: drawn faces instead (the figures mean little)")
        rng = np.random.default_rng(0)
        people = (synthetic_face.make_person(rng, 4, i % 2 == 0, 28.0) for i in range(count))
        return [(f"drawn_{i}", synthetic_face.draw_photo(rng, person, 28.0, 200)[0]) for i, person in enumerate(people)]
    out = []
    for path in paths[:count]:
        with open(path, "rb") as f:
            out.append((os.path.basename(path), photo.decode(f.read())))
    return out


GROUP = (4, 3, 120, 400)  # Columns, rows, photo side and cell side of group_12, in pixels.


def group(images, seed):
    """(a group photo of `images`, the region of each) on a plain seeded texture."""
    columns, rows, side, cell = GROUP
    rng = np.random.default_rng(seed)
    texture = np.clip(110 + rng.normal(0, 25, size=(rows * 2, columns * 2, 3)), 0, 255).astype(np.uint8)
    scene = Image.fromarray(texture).resize((columns * cell, rows * cell), Image.Resampling.BICUBIC)
    regions = []
    for i, image in enumerate(images):
        x = (i % columns) * cell + (cell - side) // 2 + int(rng.integers(-60, 61))
        y = (i // columns) * cell + (cell - side) // 2 + int(rng.integers(-60, 61))
        scene.paste(image.resize((side, side), Image.Resampling.LANCZOS), (x, y))
        regions.append(middle(x, y, side, side))
    return scene, regions


def middle(x, y, width, height):
    """The region where the face's centre lies in a (width, height) photo of one face put at
    (x, y): its middle half (UTKFace's faces are centred in their photo)."""
    return (x + width / 4, y + height / 4, width / 2, height / 2)


def setting(photos, index, name):
    """(photo `index` in this setting, [(x, y, w, h) where each face's centre lies])."""
    image = photos[index][1]
    width, height = image.size
    if name == "as_is":
        return image, [middle(0, 0, width, height)]
    if name.startswith("scene_"):
        share = int(name.split("_")[1]) / 100
        _, _, (x, y, w, h) = degradations.face_region(image.size, share)
        return degradations.apply(image, "face_share", share, seed=index), [middle(x, y, w, h)]
    if name.startswith("rotated_"):
        turned = degradations.apply(image, "rotation", int(name.split("_")[1]))  # About its centre.
        return turned, [middle((turned.size[0] - width) / 2, (turned.size[1] - height) / 2, width, height)]
    if name == "zoomed":
        box = (round(0.15 * width), round(0.15 * height), round(0.85 * width), round(0.85 * height))
        return image.crop(box), [middle(-box[0], -box[1], width, height)]
    if name == "cut_side":
        return image.crop((0, 0, round(0.65 * width), height)), [middle(0, 0, width, height)]
    if name == "group_12":
        count = GROUP[0] * GROUP[1]
        return group([photos[(index + i) % len(photos)][1] for i in range(count)], seed=index)
    raise ValueError(f"unknown setting {name!r}")


def run(detector, photos, spec):
    """(faces found, faces shown, extra detections, seconds, {name: face}) of `detector` on
    [(name, pixels, regions)]."""
    found, shown, extra, seconds, kept = 0, 0, 0, 0.0, {}
    for name, pixels, regions in photos:
        start = time.perf_counter()
        big, _ = faces.detect(pixels, spec)
        seconds += time.perf_counter() - start
        matched = 0
        for x, y, w, h in regions:
            # In the middle half of the face's photo, and a quarter of its side or more (an
            # eye or a mouth taken for a face is smaller).
            inside = [f for f in big if x <= f.box[0] + f.box[2] / 2 <= x + w and y <= f.box[1] + f.box[3] / 2 <= y + h
                      and f.side >= w / 2]
            found += bool(inside)
            matched += min(1, len(inside))
            if inside and len(regions) == 1:
                kept[name] = inside[0]
        shown += len(regions)
        extra += len(big) - matched
    return found, shown, extra, seconds, kept


def framing(faces_of, reference, spec):
    """Rows comparing each detector's canonical square with the reference's, same photos."""
    rows = []
    for name, found in faces_of.items():
        if name == reference:
            continue
        shared = sorted(set(found) & set(faces_of[reference]))
        if not shared:
            continue
        offsets = []
        for photo_name in shared:
            cx, cy, side, angle = faces.square(found[photo_name], spec)
            rx, ry, rside, rangle = faces.square(faces_of[reference][photo_name], spec)
            offsets.append(((cx - rx) / rside, (cy - ry) / rside, side / rside, np.degrees(angle - rangle)))
        offsets = np.array(offsets)
        median, low, high = (np.percentile(offsets, q, axis=0) for q in (50, 10, 90))
        rows.append(f"| {name} vs {reference} | {len(shared)} | "
                    + " | ".join(f"{m:+.3f} ({lo:+.3f} … {hi:+.3f})" for m, lo, hi in zip(median, low, high)) + " |")
    return rows


def main(argv):
    del argv
    photos = load_photos(FLAGS.photos_dir, FLAGS.photos)
    print(f"{len(photos)} photos from {FLAGS.photos_dir}; settings {', '.join(FLAGS.settings)}")
    results, as_is_faces = {}, {}
    for detector in FLAGS.detectors:
        spec = faces.CropSpec(detector=detector, min_face_size=FLAGS.min_face_size)
        faces.make_detector(detector)  # Load its weights before the clock starts.
        for name in FLAGS.settings:
            pictures = []
            for index, (photo_name, _) in enumerate(photos):
                changed, regions = setting(photos, index, name)
                pictures.append((photo_name, np.asarray(changed), regions))
            found, shown, extra, seconds, kept = run(detector, pictures, spec)
            results[detector, name] = (found, shown, extra, seconds)
            if name == "as_is":
                as_is_faces[detector] = kept
            print(f"{detector:>10} {name:>11}: found {found}/{shown} ({100 * found / shown:.1f}%), "
                  f"extra {extra}, {len(pictures) / seconds:.1f} photos/s", flush=True)

    print("\n| setting | " + " | ".join(f"{d} found | {d} extra | {d} photos/s" for d in FLAGS.detectors) + " |")
    print("|---|" + "---|---|---|" * len(FLAGS.detectors))
    for name in FLAGS.settings:
        cells = []
        for detector in FLAGS.detectors:
            found, shown, extra, seconds = results[detector, name]
            cells += [f"{100 * found / shown:.1f}%", str(extra), f"{len(photos) / seconds:.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")

    if FLAGS.reference in as_is_faces:
        spec = faces.CropSpec()
        print("\nThe canonical square against the reference's, as_is photos both found (median (10% … 90%)):")
        print("| detectors | photos | centre x offset / side | centre y offset / side | side ratio | angle, degrees |")
        print("|---|---|---|---|---|---|")
        print("\n".join(framing(as_is_faces, FLAGS.reference, spec)))

    print()
    pictures = len(photos) * len(FLAGS.settings)
    for detector in FLAGS.detectors:
        found, shown = (sum(results[detector, n][i] for n in FLAGS.settings) for i in (0, 1))
        seconds = sum(results[detector, n][3] for n in FLAGS.settings)
        print(f"{detector} found: {100 * found / shown:.1f}% of {shown} faces, {pictures / seconds:.1f} photos/s")
        if detector != FLAGS.reference and FLAGS.reference in FLAGS.detectors:
            as_is = [results[d, "as_is"][3] for d in (detector, FLAGS.reference)] if "as_is" in FLAGS.settings else None
            if as_is:
                print(f"{detector}/{FLAGS.reference} photos/s, as_is: {as_is[1] / as_is[0]:.2f}")
            reference = sum(results[FLAGS.reference, n][3] for n in FLAGS.settings)
            print(f"{detector}/{FLAGS.reference} photos/s: {reference / seconds:.2f}")


if __name__ == "__main__":
    app.run(main)
