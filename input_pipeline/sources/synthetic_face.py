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


# The synthetic UTKFace sample's stand-in for race (0..4: White, Black, Asian, Indian,
# Others): which skin tones, hair and eye colours a person may have. A drawing, not a
# model of people: it only gives the race head something visible to learn.
RACE_LOOKS = {
    0: ((0, 1, 2), None, None),
    1: ((4, 5, 6), (0, 1), (0, 1)),
    2: ((0, 1, 2), (0,), (0, 1)),
    3: ((2, 3, 4), (0, 1), (0, 1)),
    4: ((1, 2, 3, 4), None, None),
}


def make_person(rng, age_group, male, years, race=None):
    """Draws a subject's fixed traits (with `race`, within RACE_LOOKS[race])."""
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
    skin, eyes = SKIN_TONES[rng.integers(len(SKIN_TONES))], EYE_COLOURS[rng.integers(len(EYE_COLOURS))]
    if race is not None:
        tones, hairs, eye_colours = RACE_LOOKS[race]
        skin = SKIN_TONES[rng.choice(tones)]
        if hairs:
            hair = HAIR_COLOURS[rng.choice(hairs)]
        if eye_colours:
            eyes = EYE_COLOURS[rng.choice(eye_colours)]
    return Person(
        age_group=age_group, years=years, male=male, skin=skin, hair=hair, eyes=eyes,
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


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """Where a face's parts go in one photo, and the colours that age changes."""

    cx: float
    cy: float
    fw: float  # Face width.
    fh: float  # Face height.
    yaw: float  # -1..1: how far the head turns.
    shift: float  # Inner features move towards the side the head turns to.
    young: float  # 1 at birth, 0 from 18 on.
    old: float  # 0 up to 30, 1 at 75.
    manly: float  # 0 for women and children, up to 1 for adult men.
    skin: tuple
    dark_skin: tuple
    hair: tuple
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_ry: float

    @property
    def top(self):
        return self.cy - self.fh * 0.55

    @property
    def bottom(self):
        return self.cy + self.fh * 0.5


def _geometry(rng, person, years, cx, cy, fw, yaw):
    young = _clamp((18 - years) / 18)
    old = _clamp((years - 30) / 45)
    fh = fw * (1.02 + 0.33 * (1 - young))  # Infants' faces are round.
    grey = _clamp((years - 38) / 32 + rng.normal(0, 0.08))
    skin = _mix(person.skin, (255, 200, 190), 0.15 * young)
    jx, jy, _ = person.feature_jitter
    eye_rx = fw * (0.085 + 0.035 * young)  # Infants' eyes are large...
    return _Geometry(
        cx=cx, cy=cy, fw=fw, fh=fh, yaw=yaw, shift=yaw * fw * 0.12, young=young, old=old,
        manly=(1 - young) if person.male else 0.0, skin=skin, dark_skin=_shade(skin, 0.78),
        hair=_mix(person.hair, GREY_HAIR, grey),
        eye_y=cy + fh * (-0.03 + 0.13 * young) + jy * fh * 0.01,  # ...and set low.
        eye_dx=fw * (0.21 + 0.015 * jx), eye_rx=eye_rx,
        eye_ry=eye_rx * (0.62 - 0.12 * old))  # Lids droop with age.


def _draw_body(draw, rng, person, g):
    """Clothes, neck, and long hair falling behind the head onto the shoulders."""
    clothes = tuple(int(c) for c in rng.integers(0, 256, size=3))
    shoulder = g.fw * (1.1 + 0.9 * (1 - g.young)) * (1.1 if person.male else 1.0)
    neckline = g.bottom + g.fh * (0.25 - 0.18 * g.young)  # Infants have almost no neck.
    draw.ellipse((g.cx - shoulder, neckline, g.cx + shoulder, neckline + g.fh * 1.35), fill=clothes)
    neck = g.fw * (0.42 + 0.12 * g.manly)
    draw.rectangle((g.cx - neck / 2, g.cy, g.cx + neck / 2, neckline + g.fh * 0.2), fill=g.dark_skin)
    if person.long_hair:
        length = g.fh * rng.uniform(0.75, 1.15)
        draw.rounded_rectangle((g.cx - g.fw * 0.68, g.top, g.cx + g.fw * 0.68, g.cy + length),
                               radius=g.fw * 0.3, fill=_shade(g.hair, 0.85))


def _draw_head(draw, rng, person, years, g):
    """Ears, head (a man's jaw squarer and wider) and the hair on top."""
    ear_w, ear_h = g.fw * 0.13, g.fh * 0.2
    for side in (-1, 1):
        if side * g.yaw < -0.5:
            continue  # The far ear hides when the head turns.
        ex = g.cx + side * g.fw * 0.5
        draw.ellipse((ex - ear_w, g.cy - ear_h * 0.6, ex + ear_w, g.cy + ear_h * 0.6), fill=g.dark_skin)
        if person.earrings:
            y = g.cy + ear_h * 0.55
            draw.ellipse((ex - 4, y, ex + 4, y + 8), fill=(235, 200, 60))
    draw.ellipse((g.cx - g.fw / 2, g.top, g.cx + g.fw / 2, g.bottom), fill=g.skin)
    if g.manly > 0:
        jaw = g.fw * (0.40 + 0.06 * g.manly)
        draw.rounded_rectangle((g.cx - jaw, g.cy, g.cx + jaw, g.bottom - g.fh * 0.02),
                               radius=g.fw * (0.25 - 0.1 * g.manly), fill=g.skin)
    if person.hairline < 0.95:  # A cap of the head ellipse, cut at the hairline.
        cap_angle = 25 + 45 * person.hairline
        cap = (g.cx - g.fw * 0.56, g.top - g.fh * 0.06, g.cx + g.fw * 0.56, g.bottom + g.fh * 0.04)
        colour = _mix(g.skin, g.hair, 0.45) if years < 2 else g.hair  # Infants: a thin down.
        draw.chord(cap, 180 + cap_angle, 360 - cap_angle, fill=colour)
        if person.long_hair or rng.random() < 0.3:  # A fringe.
            draw.chord((g.cx - g.fw * 0.5, g.top - g.fh * 0.02, g.cx + g.fw * 0.4, g.cy), 190, 330, fill=colour)


def _draw_eyes(draw, rng, person, g):
    """Eyes and brows; crow's feet and bags with age; eye shadow; glasses."""
    brow = max(1, int(g.fw * (0.022 + 0.02 * g.manly)))
    frame = max(2, int(g.fw * 0.015))
    for side in (-1, 1):
        ex, ey, rx, ry = g.cx + side * g.eye_dx + g.shift, g.eye_y, g.eye_rx, g.eye_ry
        if person.lipstick and rng.random() < 0.5:
            draw.ellipse((ex - rx * 1.1, ey - ry * 1.9, ex + rx * 1.1, ey), fill=_mix(g.skin, (120, 80, 140), 0.4))
        draw.ellipse((ex - rx, ey - ry, ex + rx, ey + ry), fill=(245, 245, 240))
        iris = ry * 0.95
        draw.ellipse((ex - iris, ey - iris, ex + iris, ey + iris), fill=person.eyes)
        draw.ellipse((ex - iris / 2, ey - iris / 2, ex + iris / 2, ey + iris / 2), fill=(10, 10, 10))
        by = ey - ry - g.fh * (0.05 + 0.01 * (1 - g.young))
        draw.line((ex - rx * 1.2, by, ex + rx * 1.2, by), fill=_shade(g.hair, 0.8), width=brow)
        if g.old > 0.2:
            n = int(1 + 4 * g.old)
            for i in range(n):
                a = math.radians(-30 + 60 * i / max(n - 1, 1))
                x0 = ex + side * rx * 1.15
                draw.line((x0, ey, x0 + side * g.fw * 0.07 * math.cos(a), ey + g.fw * 0.07 * math.sin(a)),
                          fill=g.dark_skin, width=max(1, int(g.fw * 0.008)))
            draw.arc((ex - rx, ey, ex + rx, ey + ry * 2.2), 20, 160, fill=g.dark_skin,
                     width=max(1, int(g.fw * 0.01)))
        if person.glasses:
            r = rx * 1.5
            draw.ellipse((ex - r, ey - r * 0.8, ex + r, ey + r * 0.8), outline=(25, 25, 25), width=frame)
    if person.glasses:
        inner = g.eye_dx - g.eye_rx * 1.5
        draw.line((g.cx - inner + g.shift, g.eye_y, g.cx + inner + g.shift, g.eye_y), fill=(25, 25, 25),
                  width=frame)


def _draw_forehead_lines(draw, rng, person, g):
    """None before the late thirties, up to six at 75."""
    forehead_top = g.top + g.fh * (0.12 + 0.25 * person.hairline)
    lines = int(g.old * 6 + rng.uniform(0, 1.0))
    for i in range(lines):
        y = forehead_top + (g.eye_y - g.eye_ry - forehead_top) * (0.3 + 0.5 * i / max(lines, 1))
        draw.arc((g.cx - g.fw * 0.3 + g.shift, y, g.cx + g.fw * 0.3 + g.shift, y + g.fh * 0.12), 200, 340,
                 fill=g.dark_skin, width=max(1, int(g.fw * 0.01)))


def _draw_nose_and_mouth(draw, rng, person, g):
    """Nose, nasolabial folds with age, beard or stubble, and the mouth."""
    cx, shift = g.cx, g.shift
    nose_y = g.eye_y + g.fh * (0.15 + 0.07 * (1 - g.young) + 0.015 * person.feature_jitter[2])
    nose_w = g.fw * (0.07 + 0.05 * (1 - g.young))
    draw.line((cx + shift * 1.3, g.eye_y + g.eye_ry, cx + shift * 1.4, nose_y), fill=g.dark_skin,
              width=max(1, int(g.fw * 0.012)))
    draw.arc((cx - nose_w + shift * 1.3, nose_y - nose_w * 0.6, cx + nose_w + shift * 1.3, nose_y + nose_w * 0.5),
             20, 160, fill=_shade(g.skin, 0.6), width=max(1, int(g.fw * 0.015)))
    mouth_y = nose_y + g.fh * (0.1 + 0.02 * (1 - g.young))
    mouth_w = g.fw * (0.2 + 0.1 * (1 - g.young) + 0.02 * person.feature_jitter[0])
    if g.old > 0.15:
        for side in (-1, 1):
            x0 = cx + shift + side * nose_w * 1.2
            draw.line((x0, nose_y - nose_w * 0.3, cx + shift + side * mouth_w * 0.65, mouth_y + g.fh * 0.03),
                      fill=g.dark_skin, width=max(1, int(g.fw * (0.006 + 0.012 * g.old))))
    if person.beard > 0:
        beard = _mix(g.skin, _shade(g.hair, 0.9), 0.35 if person.beard < 0.5 else 0.9)
        draw.chord((cx - g.fw / 2, g.top, cx + g.fw / 2, g.bottom), 15, 165, fill=beard)
        draw.polygon(((cx - mouth_w * 0.6 + shift, mouth_y - 2), (cx + mouth_w * 0.6 + shift, mouth_y - 2),
                      (cx + shift, mouth_y - g.fh * 0.05)), fill=beard)
    lips = (200, 30, 60) if person.lipstick else _mix(g.skin, (170, 80, 80), 0.45)
    smile = rng.uniform(-0.2, 1.0)
    lip = max(2, int(g.fh * (0.018 + 0.008 * (not person.male))))
    arc = (10, 170) if smile > 0 else (190, 350)
    draw.arc((cx - mouth_w / 2 + shift, mouth_y - g.fh * 0.04 * smile, cx + mouth_w / 2 + shift,
              mouth_y + g.fh * 0.04 * (1 + smile)), *arc, fill=lips, width=lip)


def _draw_person(draw, rng, person, years, cx, cy, fw, yaw):
    """Draws head and shoulders centred at (cx, cy) with face width fw."""
    g = _geometry(rng, person, years, cx, cy, fw, yaw)
    _draw_body(draw, rng, person, g)
    _draw_head(draw, rng, person, years, g)
    _draw_eyes(draw, rng, person, g)
    _draw_forehead_lines(draw, rng, person, g)
    _draw_nose_and_mouth(draw, rng, person, g)


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
