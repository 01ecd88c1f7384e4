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
