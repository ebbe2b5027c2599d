"""The public dataset layouts the importers read. The generators write them too (`phantoms.aasce.write_spineweb16`,
`phantoms.fracture.write_verse`), so the importers are tested on data shaped like the real thing; those writers
live with their generators and import this module, never the other way round.

SpineWeb dataset 16 (the AASCE 2019 release, "boostnet_labeldata"):

    data/{training,test}/<name>.jpg
    labels/{training,test}/filenames.csv   one image file name per row, no header
    labels/{training,test}/landmarks.csv   136 values per row, no header: x1..x68 / image width, then y1..y68 / height
    labels/{training,test}/angles.csv      3 values per row, no header: the Cobb angles (degrees)

VerSe (2020 naming):

    rawdata/sub-<id>/sub-<id>_ct.nii.gz
    derivatives/sub-<id>/sub-<id>_seg-vert_msk.nii.gz        vertebra label map, VerSe integers
    derivatives/sub-<id>/sub-<id>_seg-subreg_ctd.json         [{"direction": ["L", "P", "S"]},
                                                               {"label": 20, "X": i, "Y": j, "Z": k}, ...]
    fracture_grades.csv                                        subject,vertebra,grade,shape (Genant; SpineBench's
                                                               table of the fracture grading distributed beside VerSe)

VerSe centroids are continuous voxel indices along the image axes named by "direction" (nibabel axis codes: the
letter each axis points towards).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

SPINEWEB_SPLITS = {"train": "training", "test": "test"}
VERSE_GRADES = "fracture_grades.csv"


def axis_codes(image: sitk.Image) -> list[str]:
    """nibabel-style axis codes of a SimpleITK image: for each index axis, the patient direction it points to
    (SimpleITK's physical frame is LPS)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(image.GetDimension(), image.GetDimension())
    codes = []
    for axis in range(image.GetDimension()):
        column = direction[:, axis]
        major = int(np.argmax(np.abs(column)))
        codes.append("LPS"[major] if column[major] > 0 else "RAI"[major])
    return codes
