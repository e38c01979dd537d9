"""Unseen speech for the accuracy figures: five passages no test reads, each spoken by a
different espeak-ng voice (generated at run time: `apt-get install espeak-ng`; `make bench`
installs it), so the word error rate is not the one clip the tests know, looped.

`passages(dest)` writes them (16 kHz mono WAV) and returns (name, voice, path, text) rows;
`median` is the statistic the README quotes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

# (name, espeak-ng voice, text): plain words, no figures or names a model may spell its own way
PASSAGES: tuple[tuple[str, str, str], ...] = (
    (
        "kitchen",
        "en-us",
        "Cooking at home is easier than most people think. Start with a simple meal, such as "
        "soup or a salad, and cook it several times until you know it well. Buy fresh "
        "vegetables at the market and keep a few good spices in the cupboard. A sharp knife "
        "and a heavy pan will do most of the work for you. Taste the food while it cooks and "
        "add salt a little at a time. When friends come over, make the dish you know best "
        "and spend the evening talking instead of worrying about the oven.",
    ),
    (
        "weather",
        "en-gb",
        "The weather over the coast will change quickly this afternoon. Clouds are moving in "
        "from the west, and heavy rain is expected to reach the hills by early evening. "
        "Drivers should take care on the mountain roads, where strong winds may bring down "
        "branches. Tomorrow morning will start cold and bright, with frost in sheltered "
        "valleys. The rest of the week looks calmer, with light winds and long sunny spells, "
        "although a few showers could still reach the northern islands on Friday.",
    ),
    (
        "garden",
        "en-us+m3",
        "A small garden can feed a family for much of the summer. Choose a sunny corner, "
        "turn the soil in early spring, and mix in plenty of compost. Plant tomatoes, beans "
        "and lettuce in rows that are easy to reach. Water the roots in the morning rather "
        "than the leaves in the evening, because wet leaves invite disease. Pull the weeds "
        "while they are still small. By the middle of July you will be picking more "
        "vegetables than you can eat, and the neighbours will be glad to share them.",
    ),
    (
        "museum",
        "en-gb-x-rp",
        "The museum has opened a new gallery devoted to the history of the river. Visitors "
        "begin at a wooden boat that was found buried in the mud, and then walk past old "
        "maps, fishing nets and tools that people once used to build the bridges. A quiet "
        "room at the end shows paintings of the harbour at different times of day. Children "
        "can try on the clothes of sailors and merchants. Entry is free on weekday "
        "mornings, and the cafe on the top floor looks out across the water.",
    ),
    (
        "training",
        "en-us+f2",
        "Running a long race takes months of patient training. Most coaches suggest "
        "building up slowly, adding only a little distance each week, so that the body has "
        "time to adapt. Easy runs should feel relaxed enough to hold a conversation. Once a "
        "week, try a longer run at a gentle pace, and once a week run faster for short "
        "stretches. Sleep and food matter as much as the miles. In the final weeks before "
        "the race, run less and rest more, so that you reach the start line fresh.",
    ),
)


@dataclass(frozen=True)
class Passage:
    name: str
    voice: str
    path: Path
    text: str


def passages(dest: Path, *, count: int | None = None) -> list[Passage]:
    """Speak the passages (the first `count`) into `dest` as 16 kHz mono WAV files."""
    from tests.fixtures.speech import make_speech

    dest.mkdir(parents=True, exist_ok=True)
    chosen = PASSAGES if count is None else PASSAGES[:count]
    return [
        Passage(name, voice, make_speech(dest / f"{name}.wav", text, voice=voice), text)
        for name, voice, text in chosen
    ]


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")
