"""Training-data download: a zip of the dataset folder, labels included. Test splits are never served."""

from django.contrib.auth.decorators import login_required
from django.http import Http404

from spinebench.access import can_download_dataset

from .byte_ranges import ranged_file_response
from .models import Dataset
from .services import training_archive


def _download(request, pk):
    dataset = Dataset.objects.select_related("challenge").filter(pk=pk).first()
    if dataset is None or not can_download_dataset(dataset, request.user) or not dataset.exists():
        raise Http404("No downloadable training dataset here.")
    return ranged_file_response(
        request, training_archive(dataset), filename=f"{dataset.challenge.slug}-{dataset.slug}.zip"
    )


download = login_required(_download)
