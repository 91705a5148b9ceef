"""Trial data: arm-level and contrast-level trials, readers, shipped datasets.

The one import place of the data layer: ``from trialsynth.data import load, TrialData``.
"""

from trialsynth.data.columns import STANDARD_COLUMNS
from trialsynth.data.errors import DataError
from trialsynth.data.reader import load
from trialsynth.data.shipped import SHIPPED_DATASETS
from trialsynth.data.trials import ArmData, ContrastData, Exclusion, Kind, TrialData, trial_type

__all__ = [
    "SHIPPED_DATASETS",
    "STANDARD_COLUMNS",
    "ArmData",
    "ContrastData",
    "DataError",
    "Exclusion",
    "Kind",
    "TrialData",
    "load",
    "trial_type",
]
