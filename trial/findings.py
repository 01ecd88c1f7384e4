"""The findings vocabulary: the 14 CheXpert findings every part of the platform names.

Readers tick them, reference labels and automated metrics use them, the analysis counts them.
"""

# The 14 CheXpert findings of PROTOCOL.md, in its order (readers tick them; the analysis counts
# them). A case with >= COMPLEX_AT of them, "No Finding" aside, is a complex case.
FINDINGS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
NO_FINDING = FINDINGS[0]
COMPLEX_AT = 3
SUPPORT_DEVICES = "Support Devices"


def with_no_finding(labels: dict[str, int]) -> dict[str, int]:
    """All 14 findings (missing ones 0), No Finding recomputed by CheXpert's rule: 1 exactly
    when no finding other than Support Devices is 1 (a device is not a pathology)."""
    out = {f: int(bool(labels.get(f, 0))) for f in FINDINGS}
    out[NO_FINDING] = int(not any(v for f, v in out.items()
                                  if f not in (NO_FINDING, SUPPORT_DEVICES)))
    return out
