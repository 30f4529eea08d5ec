"""Reading a prompt for the sketch provider: which palette, which things to draw.

Pure functions of the prompt text; the drawing itself is in `sketch_shapes.py`.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from dataclasses import dataclass

RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (205, 35, 35), "crimson": (170, 20, 50), "scarlet": (225, 40, 30),
    "orange": (240, 130, 30), "yellow": (245, 215, 50), "gold": (215, 170, 40),
    "golden": (220, 175, 50), "green": (50, 160, 60), "teal": (30, 140, 140),
    "cyan": (40, 200, 220), "turquoise": (50, 200, 190), "blue": (40, 80, 210),
    "navy": (20, 30, 100), "purple": (120, 50, 170), "violet": (140, 70, 200),
    "magenta": (210, 40, 170), "pink": (240, 130, 180), "white": (245, 245, 245),
    "black": (20, 20, 25), "grey": (130, 130, 135), "gray": (130, 130, 135),
    "silver": (190, 190, 200), "brown": (120, 75, 40),
}  # fmt: skip


@dataclass(frozen=True)
class Mood:
    """What a setting word does to the picture; None leaves that part to other words."""

    sky: tuple[RGB, RGB] | None = None  # top, bottom
    ground: RGB | None = None
    weather: str | None = None  # "snow" | "rain" | "stars"
    is_water: bool = False  # the ground is a sea: draw waves on it


_NIGHT = Mood(sky=((8, 12, 40), (30, 40, 85)), weather="stars")
_DUSK = Mood(sky=((70, 40, 110), (250, 140, 60)))
_DAWN = Mood(sky=((120, 150, 210), (250, 190, 160)))
_FOREST = Mood(sky=((150, 200, 160), (210, 235, 200)), ground=(40, 110, 45))
_SEA = Mood(sky=((70, 140, 220), (170, 210, 240)), ground=(25, 85, 160), is_water=True)
_SNOW = Mood(sky=((170, 195, 225), (225, 235, 245)), ground=(240, 243, 250), weather="snow")
_DESERT = Mood(sky=((120, 180, 230), (250, 225, 170)), ground=(225, 190, 120))
_FIRE = Mood(sky=((60, 10, 10), (230, 90, 20)), ground=(50, 20, 15))
_SPACE = Mood(sky=((0, 0, 5), (40, 15, 70)), weather="stars")
_MEADOW = Mood(sky=((110, 170, 235), (200, 225, 245)), ground=(90, 170, 70))
_RAIN = Mood(sky=((90, 100, 115), (150, 160, 170)), weather="rain")
MOODS: dict[str, Mood] = {
    **dict.fromkeys(("night", "nighttime", "midnight", "dark", "starry"), _NIGHT),
    **dict.fromkeys(("dusk", "sunset", "evening", "twilight", "autumn", "fall"), _DUSK),
    **dict.fromkeys(("dawn", "sunrise", "morning"), _DAWN),
    **dict.fromkeys(("forest", "jungle", "woods", "woodland"), _FOREST),
    **dict.fromkeys(("ocean", "sea", "beach", "lake", "river", "water", "harbor"), _SEA),
    **dict.fromkeys(("snow", "snowy", "winter", "ice", "icy", "arctic", "frozen"), _SNOW),
    **dict.fromkeys(("desert", "sand", "dunes"), _DESERT),
    **dict.fromkeys(("fire", "lava", "volcano", "burning", "inferno"), _FIRE),
    **dict.fromkeys(("space", "galaxy", "cosmic", "nebula", "planet"), _SPACE),
    **dict.fromkeys(("meadow", "field", "spring", "garden", "grass", "summer"), _MEADOW),
    **dict.fromkeys(("rain", "rainy", "storm", "stormy"), _RAIN),
}

# Nouns the sketch knows how to draw, by the shape that draws them.
NOUNS: dict[str, str] = {
    **dict.fromkeys(("sun",), "sun"),
    **dict.fromkeys(("moon",), "moon"),
    **dict.fromkeys(("star",), "star"),
    **dict.fromkeys(("cloud",), "cloud"),
    **dict.fromkeys(("bird", "crow", "gull", "seagull", "eagle"), "bird"),
    **dict.fromkeys(("mountain", "hill", "peak", "volcano", "alps"), "mountain"),
    **dict.fromkeys(("tree", "pine", "oak", "forest", "woods"), "tree"),
    **dict.fromkeys(("house", "home", "cabin", "cottage", "hut", "barn"), "house"),
    **dict.fromkeys(("lighthouse",), "lighthouse"),
    **dict.fromkeys(("castle", "palace", "fortress", "tower"), "castle"),
    **dict.fromkeys(("fox", "wolf"), "fox"),
    **dict.fromkeys(("cat", "kitten", "kitty", "tiger", "lion"), "cat"),
    **dict.fromkeys(("dog", "puppy", "hound", "bear"), "dog"),
    **dict.fromkeys(("car", "truck", "taxi", "van", "bus"), "car"),
    **dict.fromkeys(("boat", "ship", "sailboat", "yacht"), "boat"),
    **dict.fromkeys(("flower", "rose", "tulip", "daisy", "sunflower"), "flower"),
    **dict.fromkeys(("fish", "whale", "shark", "dolphin"), "fish"),
    **dict.fromkeys(("person", "people", "man", "woman", "girl", "boy", "child", "kid",
                     "knight", "wizard", "astronaut", "sailor", "farmer", "figure"), "person"),
    **dict.fromkeys(("building", "city", "skyscraper", "town", "street", "apartment"),
                    "building"),
    **dict.fromkeys(("balloon",), "balloon"),
    **dict.fromkeys(("plane", "airplane", "aeroplane", "jet", "rocket", "spaceship"), "plane"),
    **dict.fromkeys(("rabbit", "bunny", "hare"), "rabbit"),
    **dict.fromkeys(("horse", "pony", "deer", "unicorn", "cow"), "horse"),
    **dict.fromkeys(("rock", "stone", "boulder", "cliff"), "rock"),
}
GROUP_SIZES = {"forest": 6, "woods": 5, "city": 5, "town": 4, "people": 3}  # many of a thing
SKY_SHAPES = ("sun", "moon", "star", "cloud", "bird", "balloon", "plane")
NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "many": 5, "several": 4}
STOPWORDS = frozenset(
    "a an the and or of in on at to with by for from into over under near above below"
    " is are its it this that some very style lighting subject larger smaller frame"
    " more less close-up view bright brighter darker lighter tones colors painting"
    " oil watercolor watercolour photo photograph photorealistic realistic detailed cinematic"
    " illustration drawing sketch render art artwork digital style portrait landscape scene"
    " beautiful cute little big small tall tiny huge giant old new young happy sad lonely"
    " soft warm cold dramatic light shadow shadows colour color colours front back top side"
    " made like one all each standing sitting flying walking running looking under-lit"
    " instead make add now please image picture ultra high quality background foreground"
    " sky day daytime time scenery".split()
)
MAX_NOT_DRAWN = 6
MAX_SCENE_CHARS = 2_000  # a prompt is read up to here: reading stays linear and bounded
MAX_WORD_CHARS = 40  # longer "words" are not words: they are not read or listed
COLOUR_REACH = 2  # words between a colour and the noun it colours


@dataclass(frozen=True)
class Thing:
    """One known noun to draw: its shape, its colour if the prompt gives one, how many."""

    shape: str
    colour: RGB | None
    count: int


@dataclass(frozen=True)
class Scene:
    """Everything the drawing needs to know about the prompt."""

    sky: tuple[RGB, RGB]
    ground: RGB
    weather: str | None
    is_water: bool
    things: tuple[Thing, ...]
    not_drawn: tuple[str, ...]  # words that name something the sketch cannot draw
    mood: str = "plain"  # the setting that decided the sky, e.g. "night"

    def describe(self) -> str:
        """One line saying what the picture shows (stored in the PNG; tests read it)."""
        things = ", ".join(
            f"{_colour_name(t.colour) + ' ' if t.colour else ''}{t.shape} x{t.count}"
            for t in self.things
        )
        parts = [f"sky: {self.mood}", f"weather: {self.weather or 'none'}",
                 f"things: {things or 'none'}"]
        if self.not_drawn:
            parts.append(f"not drawn: {', '.join(self.not_drawn)}")
        return "; ".join(parts)


def _colour_name(colour: RGB) -> str:
    return next((name for name, rgb in COLOURS.items() if rgb == colour), "coloured")


def words_of(prompt: str) -> list[str]:
    """The prompt's words, lower case, leaving out what a clause says to leave out
    ("without the fox", "a cat instead of the fox"): those words are dropped everywhere."""
    kept: list[str] = []
    dropped: set[str] = set()
    for clause in re.split(r"[,;.]", prompt[:MAX_SCENE_CHARS].lower()):
        clause, *rest = re.split(r"\b(?:without|no|minus|instead of|rather than)\b", clause)
        kept.extend(_words(clause))
        for removed in rest:
            dropped.update(_singular(word) for word in _words(removed))
    dropped -= STOPWORDS
    return [word for word in kept if _singular(word) not in dropped]


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z'-]*|\d+", text) if len(w) <= MAX_WORD_CHARS]


def _singular(word: str) -> str:
    if word in NOUNS or word in MOODS:
        return word
    if word.endswith("ies") and word[:-3] + "y" in NOUNS:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2] in NOUNS:
        return word[:-2]
    return word[:-1] if word.endswith("s") and word[:-1] in NOUNS else word


def word_colour(word: str) -> RGB:
    """A stable, saturated colour for any word (for abstract shapes and fallbacks)."""
    digest = hashlib.sha256(word.encode()).digest()
    hue, sat, val = digest[0] / 255, 0.45 + digest[1] / 255 * 0.45, 0.55 + digest[2] / 255 * 0.4
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (int(r * 255), int(g * 255), int(b * 255))


def shade(colour: RGB, factor: float) -> RGB:
    """Darker below 1, lighter above 1 (towards white)."""
    if factor <= 1:
        return (int(colour[0] * factor), int(colour[1] * factor), int(colour[2] * factor))
    t = min(factor - 1, 1.0)
    return (
        int(colour[0] + (255 - colour[0]) * t),
        int(colour[1] + (255 - colour[1]) * t),
        int(colour[2] + (255 - colour[2]) * t),
    )


def read_scene(prompt: str) -> Scene:
    """Palette, known things and leftover words of `prompt`."""
    raw_words = words_of(prompt)
    words = [_singular(word) for word in raw_words]
    sky = ground = None
    mood_word = "plain"
    weather: str | None = None
    is_water = False
    colours: list[RGB] = []
    things: dict[str, Thing] = {}
    not_drawn: list[str] = []
    pending_colour: tuple[int, RGB] | None = None  # (word index, colour)
    pending_count = 1
    for index, word in enumerate(words):
        mood = MOODS.get(word)
        if mood:  # later settings win: "a fox in snow, at night" is a night sky over snow
            sky = mood.sky or sky
            mood_word = word if mood.sky else mood_word
            if mood.ground:
                ground, is_water = mood.ground, mood.is_water
            weather = mood.weather or weather
        if word in COLOURS:
            colours.append(COLOURS[word])
            pending_colour = (index, COLOURS[word])
        elif word in NUMBERS or word.isdigit():
            pending_count = NUMBERS.get(word) or min(int(word), 6)
        elif word in NOUNS:
            shape = NOUNS[word]
            plural = raw_words[index] != word
            count = (
                pending_count if pending_count > 1 else GROUP_SIZES.get(word, 3 if plural else 1)
            )
            # A colour word names the thing right after it ("red fox", "red little fox").
            colour = None
            if pending_colour and index - pending_colour[0] <= COLOUR_REACH:
                colour = pending_colour[1]
            if shape not in things:
                things[shape] = Thing(shape, colour, count)
            pending_colour, pending_count = None, 1
        elif word not in MOODS and word not in STOPWORDS and len(word) > 2 and word.isalpha():
            if word not in not_drawn and len(not_drawn) < MAX_NOT_DRAWN:
                not_drawn.append(word)
    sky, ground = _palette(words, sky, ground, colours)
    return Scene(sky, ground, weather, is_water, tuple(things.values()), tuple(not_drawn),
                 mood_word)


def _palette(
    words: list[str], sky: tuple[RGB, RGB] | None, ground: RGB | None, colours: list[RGB]
) -> tuple[tuple[RGB, RGB], RGB]:
    """Settings decide the palette; else the colour words; else a hash of the words."""
    base = colours[0] if colours else word_colour(" ".join(sorted(set(words))))
    if sky is None:
        sky = (shade(base, 0.55), shade(base, 1.35)) if colours else (base, shade(base, 1.6))
    if ground is None:  # a night or dusk sky over unnamed ground: the ground in its shadow
        ground = shade(sky[1], 0.45) if not colours else shade(base, 0.7)
    return sky, ground
