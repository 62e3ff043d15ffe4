"""What a file holds, told by its first bytes (magic numbers), not by its name: phones write AAC voice memos
as `.mp3` and HEIC photos as `.jpg`, and a reason that names the real content tells the user what to do."""

from __future__ import annotations

from pathlib import Path

# (offset, bytes, what it is); the first match wins
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV audio"),
    (0, b"fLaC", "FLAC audio"),
    (0, b"OggS", "Ogg audio"),
    (0, b"ID3", "MP3 audio"),
    (0, b"\x1aE\xdf\xa3", "WebM/Matroska media"),
    (0, b"#!AMR", "AMR audio"),
    (0, b"0&\xb2u\x8ef\xcf\x11", "WMA/ASF media"),
    (0, b"\xff\xd8\xff", "JPEG image"),
    (0, b"\x89PNG", "PNG image"),
    (0, b"GIF8", "GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
)
_MP4_BRANDS = {b"heic": "HEIC image", b"heix": "HEIC image", b"mif1": "HEIF image", b"avif": "AVIF image",
               b"M4A ": "AAC audio (M4A)", b"M4B ": "AAC audio (M4B)", b"qt  ": "QuickTime media"}


def content_kind(path: str | Path) -> str | None:
    """A short name of what the file's bytes are ("AAC audio (M4A)", "HEIC image"...), or None if unknown."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _MP4_BRANDS.get(head[8:12], "MP4 media (AAC audio or video)")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MP3 audio" if head[1] & 0x06 else "AAC audio (ADTS)"
    for offset, magic, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return None


def misnamed(path: str | Path) -> str | None:
    """"AAC audio (M4A) inside a .mp3 name" when the bytes are not what the name says; else None."""
    kind = content_kind(path)
    suffix = Path(path).suffix.lower()
    expected = {".wav": "WAV", ".flac": "FLAC", ".ogg": "Ogg", ".mp3": "MP3", ".jpg": "JPEG", ".jpeg": "JPEG",
                ".png": "PNG", ".gif": "GIF"}.get(suffix)
    if kind is None or expected is None or kind.startswith(expected):
        return None
    return f"{kind} inside a {suffix} name"
