"""The speaker diarization options of a job (`ProcessingOptions.diarization`,
`num_speakers`, `min_speakers`, `max_speakers`): their bounds and the combinations refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_SPEAKERS = 20

SpeakerCount = Annotated[int | None, Field(ge=1, le=MAX_SPEAKERS)]
"""A number of speakers, 1-20; null: not fixed."""

DIARIZATION_DOC = (
    'Label who speaks when ("Speaker 1", "Speaker 2", ...) on segments and words; the '
    "transcript, subtitles, analysis and clips then tell the speakers apart. Not for "
    "audio_extraction jobs"
)
NUM_SPEAKERS_DOC = "The number of speakers when known (needs diarization); null: estimated"
MIN_SPEAKERS_DOC = "At least this many speakers when estimating (needs diarization)"
MAX_SPEAKERS_DOC = "At most this many speakers when estimating (needs diarization)"


def check_speaker_counts(
    diarization: bool, num: int | None, least: int | None, most: int | None
) -> None:
    """A ValueError naming the option for counts that cannot hold together: any of them
    without diarization, min above max, num outside min..max."""
    given = [
        name
        for name, value in (("num_speakers", num), ("min_speakers", least), ("max_speakers", most))
        if value is not None
    ]
    if given and not diarization:
        raise ValueError(f"{', '.join(given)} needs diarization: true")
    if least is not None and most is not None and least > most:
        raise ValueError(f"min_speakers ({least}) must not be above max_speakers ({most})")
    if num is not None and least is not None and num < least:
        raise ValueError(f"num_speakers ({num}) must not be below min_speakers ({least})")
    if num is not None and most is not None and num > most:
        raise ValueError(f"num_speakers ({num}) must not be above max_speakers ({most})")
