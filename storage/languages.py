"""Language codes a job may ask for, normalised to the codes Whisper knows.

Whisper names its 100 languages by ISO 639-1 code ("en", "de"), plus "haw" and "yue" that
have none, and "jw" for Javanese. A client may give any of:

- an ISO 639-1 code: "en", "DE" (any case);
- an ISO 639-2 code, bibliographic or terminological ("ger" or "deu"), or an ISO 639-3 code
  of the language or of its main individual language ("zho", "cmn");
- a BCP-47 tag, reduced to its primary language subtag ("pt-BR", "zh-Hant-TW").

`normalise_language` gives the Whisper code, or raises ValueError naming `options.language`
and the value. `WHISPER_LANGUAGES` is Whisper's own list (a unit test keeps it equal to the
installed faster-whisper's); the table is written out here so that validating a request
does not import the speech model's packages.
"""

from __future__ import annotations

import re

# Whisper's code -> its other codes: ISO 639-2/B, 639-2/T and 639-3 (individual languages
# and macrolanguage members), and retired or alternative 639-1 codes.
_CODES: dict[str, tuple[str, ...]] = {
    "en": ("eng",), "zh": ("zho", "chi", "cmn"), "de": ("deu", "ger"), "es": ("spa",),
    "ru": ("rus",), "ko": ("kor",), "fr": ("fra", "fre"), "ja": ("jpn",), "pt": ("por",),
    "tr": ("tur",), "pl": ("pol",), "ca": ("cat",), "nl": ("nld", "dut"), "ar": ("ara", "arb"),
    "sv": ("swe",), "it": ("ita",), "id": ("ind", "in"), "hi": ("hin",), "fi": ("fin",),
    "vi": ("vie",), "he": ("heb", "iw"), "uk": ("ukr",), "el": ("ell", "gre"),
    "ms": ("msa", "may", "zsm"), "cs": ("ces", "cze"), "ro": ("ron", "rum"), "da": ("dan",),
    "hu": ("hun",), "ta": ("tam",), "no": ("nor", "nb", "nob"), "th": ("tha",),
    "ur": ("urd",), "hr": ("hrv",), "bg": ("bul",), "lt": ("lit",), "la": ("lat",),
    "mi": ("mri", "mao"), "ml": ("mal",), "cy": ("cym", "wel"), "sk": ("slk", "slo"),
    "te": ("tel",), "fa": ("fas", "per", "pes"), "lv": ("lav", "lvs"), "bn": ("ben",),
    "sr": ("srp",), "az": ("aze", "azj"), "sl": ("slv",), "kn": ("kan",), "et": ("est", "ekk"),
    "mk": ("mkd", "mac"), "br": ("bre",), "eu": ("eus", "baq"), "is": ("isl", "ice"),
    "hy": ("hye", "arm"), "ne": ("nep", "npi"), "mn": ("mon", "khk"), "bs": ("bos",),
    "kk": ("kaz",), "sq": ("sqi", "alb", "als"), "sw": ("swa", "swh"), "gl": ("glg",),
    "mr": ("mar",), "pa": ("pan",), "si": ("sin",), "km": ("khm",), "sn": ("sna",),
    "yo": ("yor",), "so": ("som",), "af": ("afr",), "oc": ("oci",), "ka": ("kat", "geo"),
    "be": ("bel",), "tg": ("tgk",), "sd": ("snd",), "gu": ("guj",), "am": ("amh",),
    "yi": ("yid", "ydd", "ji"), "lo": ("lao",), "uz": ("uzb", "uzn"), "fo": ("fao",),
    "ht": ("hat",), "ps": ("pus", "pbt"), "tk": ("tuk",), "nn": ("nno",), "mt": ("mlt",),
    "sa": ("san",), "lb": ("ltz",), "my": ("mya", "bur"), "bo": ("bod", "tib"),
    "tl": ("tgl", "fil"), "mg": ("mlg", "plt"), "as": ("asm",), "tt": ("tat",), "haw": (),
    "ln": ("lin",), "ha": ("hau",), "ba": ("bak",), "jw": ("jav", "jv"), "su": ("sun",),
    "yue": (),
}  # fmt: skip

WHISPER_LANGUAGES = frozenset(_CODES)
_ALIASES = {alias: code for code, aliases in _CODES.items() for alias in aliases}
# A BCP-47 tag: a primary language subtag, then subtags of 1-8 letters or digits.
_TAG = re.compile(r"^([a-z]{2,3})((?:-[a-z0-9]{1,8})*)$")
EXAMPLES = '"en", "eng", "pt-BR"'


def normalise_language(value: str) -> str:
    """The Whisper code of `value` (see the module docstring), or ValueError."""
    tag = _TAG.fullmatch(value.strip().lower())
    primary = tag.group(1) if tag else ""
    code = primary if primary in WHISPER_LANGUAGES else _ALIASES.get(primary)
    if code is None:
        raise ValueError(
            f"options.language {value!r} is not a language Whisper transcribes: give an ISO "
            f"639-1 or 639-2/3 code or a BCP-47 tag of one ({EXAMPLES})"
        )
    return code
