"""Data sets: the specification's CSV formats and the embedded default data set; apis-main's
own JSON files for the built-in controller."""

from .apisfiles import read_apis_json
from .dataset import DAYS, DEFAULT_DATASET_DIR, DataSet, load_dataset, read_load_csv, read_solar_csv

__all__ = ["read_apis_json", "DAYS", "DEFAULT_DATASET_DIR", "DataSet", "load_dataset",
           "read_load_csv", "read_solar_csv"]
