"""Monitoring and the data feedback loop: what the model does in the wild, and how good it really is.

    events_source  prediction events from the local JSONL log or Elasticsearch, behind one interface
    analysis       streaming aggregates of events: volume, latency percentiles, PSI (pure)
    profile        the training profile the pipeline logs with every model (pure)
    accuracy       actual sales joined to what production forecast; live metrics (pure)
    report         alerts and the printed report (pure)
    feedback       arrived actuals appended to the training data, safely
    run            the `monitor` command's wiring: gather, judge, log to MLflow, write latest.json
"""
