"""meshchaos.load: the load generator, its classifiers, and summaries of a run.

>>> result = run_load(LoadTarget("http://127.0.0.1:8080/productpage"),
...                   LoadPlan(concurrency=8, requests=1000), classify_bookinfo)  # doctest: +SKIP
"""

from meshchaos.load.classify import (
    Classifier,
    classifier_for_url,
    classify_bookinfo,
    classify_status,
)
from meshchaos.load.engine import drive, run_load
from meshchaos.load.plan import LoadPlan, LoadTarget, Trigger, parse_duration
from meshchaos.load.result import Event, LoadResult, Sample
from meshchaos.load.summary import LoadSummary, load_summary

__all__ = [
    "Classifier",
    "Event",
    "LoadPlan",
    "LoadResult",
    "LoadSummary",
    "LoadTarget",
    "Sample",
    "Trigger",
    "classifier_for_url",
    "classify_bookinfo",
    "classify_status",
    "drive",
    "load_summary",
    "parse_duration",
    "run_load",
]
