"""The `container:` mapping of a phase in a challenge bundle (spinebench.challenges.bundles hands it here):

    container: {mode: per-case | batch, image_size_limit_mb: 4096, tmp_limit_mb: 64, output_files_limit: 256,
                log_lines: 50}

The other container limits (case time, memory, CPUs, pids, /output size, GPU) are plain phase keys."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from .models import ContainerConfig

CONTAINER_KEYS = ("mode", "image_size_limit_mb", "tmp_limit_mb", "output_files_limit", "log_lines")


def apply_container_config(phase, spec, *, where: str) -> ContainerConfig:
    from spinebench.challenges.bundles import BundleError

    if not isinstance(spec, dict):
        raise BundleError(f"{where}: expected a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(CONTAINER_KEYS))
    if unknown:
        raise BundleError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(CONTAINER_KEYS)})")
    config = ContainerConfig.objects.filter(phase=phase).first() or ContainerConfig(phase=phase)
    for key, value in spec.items():
        setattr(config, key, value)
    try:
        config.full_clean()
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise BundleError(f"{where}.{field}: {' '.join(messages)}") from None
    config.save()
    return config
