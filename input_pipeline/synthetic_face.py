"""Draws one synthetic face photo whose look depends on age and gender.

Age cues follow how faces change in life: an infant's head is round with the eyes
low and large and little hair; the face lengthens through childhood; from the late
thirties on come forehead lines, crow's feet and nasolabial folds, greying hair and,
for men, a receding hairline. Gender cues: hair length (with exceptions both ways),
jaw width, brow thickness, beard or stubble, lipstick and earrings. Nuisance
variation keeps the task from being trivial: skin and hair colour, pose (tilt,
yaw, offset, scale), cluttered backgrounds, lighting gradients, colour casts, blur,
sensor noise and JPEG quality.

Pillow and NumPy only (runs in worker processes).
"""

import dataclasses
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 132), (198, 134, 96),
              (161, 102, 72), (114, 72, 50), (84, 54, 39))
HAIR_COLOURS = ((30, 24, 20), (58, 40, 28), (96, 66, 42), (150, 112, 66), (196, 160, 98),
                (140, 62, 30))
EYE_COLOURS = ((70, 45, 25), (40, 30, 20), (60, 100, 150), (80, 120, 80), (110, 110, 120))
GREY_HAIR = (205, 205, 200)


@dataclasses.dataclass(frozen=True)
class Person:
    """What stays the same across one subject's photos."""

    age_group: int  # 0..7, the Adience class.
    years: float  # Age in years at the first photo.
    male: bool
    skin: tuple
    hair: tuple
    eyes: tuple
    long_hair: bool
    hairline: float  # 0: full head of hair .. 1: bald.
    beard: float  # 0: none, ~0.3: stubble, 1: full beard.
    glasses: bool
    lipstick: bool
    earrings: bool
    face_width: float  # Relative, around 1.
    feature_jitter: tuple  # Small offsets of eye spacing, nose length, mouth width.


def make_person(rng, age_group, male, years):
    """Draws a subject's fixed traits."""
    adult = years >= 16
    if years < 2:
        hairline, long_hair = rng.uniform(0.6, 0.9), False
    else:
        long_hair = rng.random() < (0.85 if not male else 0.08) * (0.7 if years < 6 else 1.0)
        receding = male and years > 35 and rng.random() < min(0.8, (years - 35) / 40)
        hairline = rng.uniform(0.45, 1.0) if receding else rng.uniform(0.0, 0.15)
    beard = 0.0
    if male and years >= 18:
        beard = rng.choice([0.0, 0.0, 0.3, 0.3, 1.0])
    hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=(0.3, 0.25, 0.18, 0.1, 0.1, 0.07))]
    if years < 6 and rng.random() < 0.4:
        hair = HAIR_COLOURS[4]  # Fair hair darkens with age.
    return Person(
        age_group=age_group, years=years, male=male,
        skin=SKIN_TONES[rng.integers(len(SKIN_TONES))], hair=hair,
        eyes=EYE_COLOURS[rng.integers(len(EYE_COLOURS))],
        long_hair=long_hair, hairline=hairline, beard=beard,
        glasses=adult and rng.random() < 0.12 + 0.25 * (years > 45),
        lipstick=adult and not male and rng.random() < 0.6,
        earrings=not male and years >= 4 and rng.random() < 0.35,
        face_width=rng.uniform(0.92, 1.08),
        feature_jitter=tuple(rng.uniform(-1, 1, size=3)),
    )


def _mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))


def _shade(colour, factor):
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


def _clamp(x, lo=0.0, hi=1.0):
    return max(lo, min(hi, x))


def _background(rng, size):
    """A gradient with blurred clutter: walls, windows, other people's shapes.

    Drawn and blurred at a quarter of the size, then enlarged: it is out of focus
    anyway, and blurring the full canvas would cost more than the whole face.
    """
    small = max(8, size // 4)
    top, bottom = rng.integers(20, 235, size=(2, 3))
    t = np.linspace(0, 1, small)[:, None, None]
    pixels = (top * (1 - t) + bottom * t) * np.ones((1, small, 1))
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 9)):
        x0, y0 = rng.integers(-small // 4, small, size=2)
        w, h = rng.integers(small // 10 + 1, small // 2, size=2)
        fill = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2)))
    return image.resize((size, size), Image.Resampling.BILINEAR)


def _draw_person(draw, rng, person, years, cx, cy, fw, yaw):
    """Draws head and shoulders centred at (cx, cy) with face width fw."""
    young = _clamp((18 - years) / 18)  # 1 at birth, 0 from 18 on.
    old = _clamp((years - 30) / 45)  # 0 up to 30, 1 at 75.
    manly = (1 - young) if person.male else 0.0
    fh = fw * (1.02 + 0.33 * (1 - young))  # Infants' faces are round.
    grey = _clamp((years - 38) / 32 + rng.normal(0, 0.08))
    hair = _mix(person.hair, GREY_HAIR, grey)
    skin = _mix(person.skin, (255, 200, 190), 0.15 * young)
    dark_skin = _shade(skin, 0.78)
    jx, jy, jz = person.feature_jitter
    shift = yaw * fw * 0.12  # Inner features move towards the side the head turns to.

    top, bottom = cy - fh * 0.55, cy + fh * 0.5
    # Clothes and neck.
    clothes = tuple(int(c) for c in rng.integers(0, 256, size=3))
    shoulder = fw * (1.1 + 0.9 * (1 - young)) * (1.1 if person.male else 1.0)
    neckline = bottom + fh * (0.25 - 0.18 * young)  # Infants have almost no neck.
    draw.ellipse((cx - shoulder, neckline, cx + shoulder, neckline + fh * 1.35), fill=clothes)
    neck = fw * (0.42 + 0.12 * manly)
    draw.rectangle((cx - neck / 2, cy, cx + neck / 2, neckline + fh * 0.2), fill=dark_skin)
    # Long hair falls behind the head onto the shoulders.
    if person.long_hair:
        length = fh * rng.uniform(0.75, 1.15)
        draw.rounded_rectangle((cx - fw * 0.68, top, cx + fw * 0.68, cy + length),
                               radius=fw * 0.3, fill=_shade(hair, 0.85))
    # Ears (the far one hides when the head turns).
    ear_w, ear_h = fw * 0.13, fh * 0.2
    for side in (-1, 1):
        if side * yaw < -0.5:
            continue
        ex = cx + side * fw * 0.5
        draw.ellipse((ex - ear_w, cy - ear_h * 0.6, ex + ear_w, cy + ear_h * 0.6), fill=dark_skin)
        if person.earrings:
            draw.ellipse((ex - 4, cy + ear_h * 0.55, ex + 4, cy + ear_h * 0.55 + 8), fill=(235, 200, 60))
    # Head; a man's jaw is squarer and wider.
    draw.ellipse((cx - fw / 2, top, cx + fw / 2, bottom), fill=skin)
    if manly > 0:
        jaw = fw * (0.40 + 0.06 * manly)
        draw.rounded_rectangle((cx - jaw, cy, cx + jaw, bottom - fh * 0.02),
                               radius=fw * (0.25 - 0.1 * manly), fill=skin)
    # Hair on top: a cap of the head ellipse cut at the hairline.
    if person.hairline < 0.95:
        cap_angle = 25 + 45 * person.hairline
        cap = (cx - fw * 0.56, top - fh * 0.06, cx + fw * 0.56, bottom + fh * 0.04)
        colour = _mix(skin, hair, 0.45) if years < 2 else hair  # Infants: a thin down.
        draw.chord(cap, 180 + cap_angle, 360 - cap_angle, fill=colour)
        if person.long_hair or rng.random() < 0.3:  # A fringe.
            draw.chord((cx - fw * 0.5, top - fh * 0.02, cx + fw * 0.4, cy), 190, 330, fill=colour)

    eye_y = cy + fh * (-0.03 + 0.13 * young) + jy * fh * 0.01
    eye_dx = fw * (0.21 + 0.015 * jx)
    eye_rx = fw * (0.085 + 0.035 * young)
    eye_ry = eye_rx * (0.62 - 0.12 * old)  # Lids droop with age.
    brow = max(1, int(fw * (0.022 + 0.02 * manly)))
    for side in (-1, 1):
        ex = cx + side * eye_dx + shift
        if person.lipstick and rng.random() < 0.5:  # Eye shadow.
            draw.ellipse((ex - eye_rx * 1.1, eye_y - eye_ry * 1.9, ex + eye_rx * 1.1, eye_y),
                         fill=_mix(skin, (120, 80, 140), 0.4))
        draw.ellipse((ex - eye_rx, eye_y - eye_ry, ex + eye_rx, eye_y + eye_ry), fill=(245, 245, 240))
        iris = eye_ry * 0.95
        draw.ellipse((ex - iris, eye_y - iris, ex + iris, eye_y + iris), fill=person.eyes)
        draw.ellipse((ex - iris / 2, eye_y - iris / 2, ex + iris / 2, eye_y + iris / 2), fill=(10, 10, 10))
        by = eye_y - eye_ry - fh * (0.05 + 0.01 * (1 - young))
        draw.line((ex - eye_rx * 1.2, by, ex + eye_rx * 1.2, by), fill=_shade(hair, 0.8), width=brow)
        if old > 0.2:  # Crow's feet and bags under the eyes.
            n = int(1 + 4 * old)
            for i in range(n):
                a = math.radians(-30 + 60 * i / max(n - 1, 1))
                x0 = ex + side * eye_rx * 1.15
                draw.line((x0, eye_y, x0 + side * fw * 0.07 * math.cos(a), eye_y + fw * 0.07 * math.sin(a)),
                          fill=dark_skin, width=max(1, int(fw * 0.008)))
            draw.arc((ex - eye_rx, eye_y, ex + eye_rx, eye_y + eye_ry * 2.2), 20, 160,
                     fill=dark_skin, width=max(1, int(fw * 0.01)))
        if person.glasses:
            r = eye_rx * 1.5
            draw.ellipse((ex - r, eye_y - r * 0.8, ex + r, eye_y + r * 0.8), outline=(25, 25, 25),
                         width=max(2, int(fw * 0.015)))
    if person.glasses:
        draw.line((cx - eye_dx + eye_rx * 1.5 + shift, eye_y, cx + eye_dx - eye_rx * 1.5 + shift, eye_y),
                  fill=(25, 25, 25), width=max(2, int(fw * 0.015)))

    # Forehead lines, from the late thirties on.
    forehead_top = top + fh * (0.12 + 0.25 * person.hairline)
    lines = int(old * 6 + rng.uniform(0, 1.0))
    for i in range(lines):
        y = forehead_top + (eye_y - eye_ry - forehead_top) * (0.3 + 0.5 * i / max(lines, 1))
        draw.arc((cx - fw * 0.3 + shift, y, cx + fw * 0.3 + shift, y + fh * 0.12), 200, 340,
                 fill=dark_skin, width=max(1, int(fw * 0.01)))

    nose_len = fh * (0.15 + 0.07 * (1 - young) + 0.015 * jz)
    nose_y = eye_y + nose_len
    nose_w = fw * (0.07 + 0.05 * (1 - young))
    draw.line((cx + shift * 1.3, eye_y + eye_ry, cx + shift * 1.4, nose_y), fill=dark_skin,
              width=max(1, int(fw * 0.012)))
    draw.arc((cx - nose_w + shift * 1.3, nose_y - nose_w * 0.6, cx + nose_w + shift * 1.3, nose_y + nose_w * 0.5),
             20, 160, fill=_shade(skin, 0.6), width=max(1, int(fw * 0.015)))

    mouth_y = nose_y + fh * (0.1 + 0.02 * (1 - young))
    mouth_w = fw * (0.2 + 0.1 * (1 - young) + 0.02 * jx)
    if old > 0.15:  # Nasolabial folds.
        for side in (-1, 1):
            x0 = cx + shift + side * nose_w * 1.2
            draw.line((x0, nose_y - nose_w * 0.3, cx + shift + side * mouth_w * 0.65, mouth_y + fh * 0.03),
                      fill=dark_skin, width=max(1, int(fw * (0.006 + 0.012 * old))))
    if person.beard > 0:
        beard = _mix(skin, _shade(hair, 0.9), 0.35 if person.beard < 0.5 else 0.9)
        draw.chord((cx - fw / 2, top, cx + fw / 2, bottom), 15, 165, fill=beard)
        draw.polygon(((cx - mouth_w * 0.6 + shift, mouth_y - 2), (cx + mouth_w * 0.6 + shift, mouth_y - 2),
                      (cx + shift, mouth_y - fh * 0.05)), fill=beard)
    lips = (200, 30, 60) if person.lipstick else _mix(skin, (170, 80, 80), 0.45)
    smile = rng.uniform(-0.2, 1.0)
    lip = max(2, int(fh * (0.018 + 0.008 * (not person.male))))
    draw.arc((cx - mouth_w / 2 + shift, mouth_y - fh * 0.04 * smile, cx + mouth_w / 2 + shift,
              mouth_y + fh * 0.04 * (1 + smile)), 10 if smile > 0 else 190, 170 if smile > 0 else 350,
             fill=lips, width=lip)


def _photograph(rng, image):
    """Lighting gradient, colour cast, sensor noise and blur."""
    size = image.size[0]
    pixels = np.asarray(image, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    axis = np.linspace(-1, 1, size, dtype=np.float32)
    ramp = np.cos(angle) * axis[None, :] + np.sin(angle) * axis[:, None]
    light = rng.uniform(0.65, 1.2) * (1 + rng.uniform(0, 0.35) * ramp)
    cast = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    pixels *= light[:, :, None]
    pixels *= cast
    # Luminance noise: one draw per pixel shared by the channels (a third of the cost).
    pixels += rng.standard_normal((size, size, 1), dtype=np.float32) * rng.uniform(1, 9)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.6)))


def draw_photo(rng, person, years, size):
    """Returns (aligned, coarse): the face as `size` x `size` RGB images.

    `aligned` is upright and centred, like Adience's landmark-aligned crops;
    `coarse` keeps more context and a residual tilt, like its coarse_tilt crops.
    """
    canvas = int(size * 1.4)
    image = _background(rng, canvas)
    draw = ImageDraw.Draw(image)
    fw = canvas * rng.uniform(0.27, 0.36) * person.face_width
    cx = canvas / 2 + rng.normal(0, canvas * 0.02)
    cy = canvas / 2 + rng.normal(0, canvas * 0.02)
    _draw_person(draw, rng, person, years, cx, cy, fw, yaw=rng.uniform(-0.8, 0.8))
    image = _photograph(rng, image)
    # Rotate small images, not the canvas: a crop with room to turn for the aligned
    # face, the whole canvas scaled down first for the coarse one.
    pad = size // 8
    x0, y0 = int(cx) - size // 2 - pad, int(cy) - size // 2 - pad
    region = image.crop((x0, y0, x0 + size + 2 * pad, y0 + size + 2 * pad))
    region = region.rotate(rng.normal(0, 4), resample=Image.Resampling.BILINEAR)
    aligned = region.crop((pad, pad, pad + size, pad + size))
    coarse = image.resize((size, size), Image.Resampling.BILINEAR)
    coarse = coarse.rotate(rng.normal(0, 12), resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return aligned, coarse
