"""Challenge logos: an uploaded image is hostile until proven otherwise. Its type is sniffed from its content (never
from its name or Content-Type), its size and pixel count are capped, and it is decoded and re-encoded as PNG by
Pillow, which drops every metadata chunk (EXIF, XMP, comments): the stored file holds pixels only."""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, UnidentifiedImageError

#: Formats accepted as input (Pillow's names); the output is always PNG.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})


def reencode_image(upload, *, field: str = "logo") -> ContentFile:
    """The upload decoded and re-encoded as an RGBA (or RGB) PNG, or a ValidationError keyed by `field` saying what is
    wrong: too large a file, not an image, a format outside ACCEPTED_FORMATS, too many pixels, a truncated file."""
    max_bytes = settings.SPINEBENCH_CHALLENGE_IMAGE_MAX_BYTES
    max_side = settings.SPINEBENCH_CHALLENGE_IMAGE_MAX_SIDE
    if upload.size > max_bytes:
        raise ValidationError({field: f"The image is {upload.size} bytes; the limit is {max_bytes} bytes."})
    upload.seek(0)
    raw = upload.read(max_bytes + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                kind = probe.format
                width, height = probe.size
                if kind not in ACCEPTED_FORMATS:
                    raise ValidationError({field: f"Unsupported image type {kind}; use PNG, JPEG, GIF or WebP."})
                if max(width, height) > max_side:
                    raise ValidationError(
                        {field: f"The image is {width}×{height} pixels; the longest side may be {max_side}."}
                    )
                probe.seek(0)
                probe.load()
                pixels = probe.convert("RGBA" if probe.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError({field: "The file is not an image the site can read (PNG, JPEG, GIF or WebP)."}) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ValidationError({field: "The image is damaged or truncated and cannot be decoded."}) from None
    output = io.BytesIO()
    clean = Image.new(pixels.mode, pixels.size)  # a fresh image: no info dict, no metadata carried over
    clean.paste(pixels)
    clean.save(output, format="PNG", optimize=True)
    return ContentFile(output.getvalue(), name="logo.png")
