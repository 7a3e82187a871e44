"""Data sets: the specification's CSV formats and the embedded default data set."""

from .dataset import DAYS, DEFAULT_DATASET_DIR, DataSet, load_dataset, read_load_csv, read_solar_csv

__all__ = ["DAYS", "DEFAULT_DATASET_DIR", "DataSet", "load_dataset", "read_load_csv",
           "read_solar_csv"]
